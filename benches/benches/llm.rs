//! The embedded LLM (SmolLM2-135M-Instruct, our llama forward on candle: f32 prompts, Q8_0
//! decode, CPU): time to first token for a ~200-token prompt, cold and as a follow-up turn
//! whose persona is already in the KV cache, and decode speed. Prints Markdown rows for
//! BENCHMARKS.md.
//!
//! Run: `cargo bench -p switchboard-benches --bench llm` (models fetched).

use std::time::{Duration, Instant};

use switchboard_benches::{models_dir, percentiles};
use switchboard_models::llm::{ChatRole, GenerateRequest, LlmToken, LocalLlm, LocalLlmConfig};
use switchboard_models::provision::catalog::SMOLLM2;

const RUNS: usize = 9;
const NEW_TOKENS: usize = 96;

const PERSONA: &str = "You are a helpful voice assistant for a restaurant booking line. Answer briefly, in plain \
    spoken sentences, without lists. You can tell callers about opening hours, which are noon to \
    ten at night every day except Monday, about the menu, which changes weekly and always has \
    vegetarian dishes, and about bookings, which need a name, a time and the number of guests. \
    Tables for more than eight guests need a call with the manager. Parking is free behind the \
    building, and the nearest metro station is a five minute walk away.";

const QUESTIONS: [&str; 3] = [
    "Hi, I would like to book a table for four people this Saturday at eight in the evening. \
     Is that possible, and do you have anything vegetarian on the menu?",
    "Good evening, we are a group of six and want to come on Friday around seven. Can we park \
     near the restaurant, and how far is the metro?",
    "Hello, are you open on Monday at lunch time, and can I bring my dog along to the table \
     outside if the weather is nice?",
];

struct Run {
    first_token: Duration,
    rate: Option<f64>,
    prompt_tokens: usize,
}

fn ask(llm: &LocalLlm, system: String, user: &str, seed: u64) -> Run {
    let req = GenerateRequest {
        messages: vec![(ChatRole::System, system), (ChatRole::User, user.into())],
        max_tokens: NEW_TOKENS,
        temperature: 0.7,
        seed,
        ..GenerateRequest::default()
    };
    let asked = Instant::now();
    let mut stream = llm.generate(req);
    let mut first = None;
    while let Some(t) = stream.next_blocking() {
        match t.expect("generation") {
            LlmToken::Text(_) => {
                first.get_or_insert_with(|| asked.elapsed());
            }
            LlmToken::Done {
                prompt_tokens,
                output_tokens,
                ..
            } => {
                let first_token = first.unwrap_or_default();
                let decode = asked.elapsed() - first_token;
                return Run {
                    first_token,
                    rate: (output_tokens > 1)
                        .then(|| (output_tokens - 1) as f64 / decode.as_secs_f64()),
                    prompt_tokens,
                };
            }
        }
    }
    panic!("the stream ended without Done");
}

fn main() {
    let started = Instant::now();
    let llm =
        LocalLlm::load(LocalLlmConfig::new(models_dir().join(SMOLLM2))).expect("SmolLM2 loads");
    println!(
        "model load (GGUF Q4_1 to f32 + Q8_0): {:.2} s\n",
        started.elapsed().as_secs_f64()
    );
    // Warm-up: first-touch page faults and thread pools.
    ask(&llm, format!("Warm-up. {PERSONA}"), QUESTIONS[0], 0);

    let mut cold = Vec::new();
    let mut follow_up = Vec::new();
    let mut rates = Vec::new();
    let mut tokens = 0;
    for run in 0..RUNS {
        // Cold: a system prompt that differs from its first word, so nothing is cached.
        let r = ask(
            &llm,
            format!("Session {run}. {PERSONA}"),
            QUESTIONS[run % 3],
            run as u64,
        );
        cold.push(r.first_token);
        tokens = r.prompt_tokens;
        rates.extend(r.rate);
        // Follow-up: the same persona, another caller's question; the system turn is cached.
        let r = ask(
            &llm,
            format!("Session {run}. {PERSONA}"),
            QUESTIONS[(run + 1) % 3],
            run as u64,
        );
        follow_up.push(r.first_token);
        rates.extend(r.rate);
    }
    let (c50, c95) = percentiles(&mut cold);
    let (f50, f95) = percentiles(&mut follow_up);
    println!("| measure | p50 | p95 |\n|---|---|---|");
    println!("| time to first token, {tokens}-token prompt, cold | {c50:.0} ms | {c95:.0} ms |");
    println!(
        "| time to first token, {tokens}-token prompt, persona cached (new question only) | {f50:.0} ms | {f95:.0} ms |"
    );
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "| decode speed | {median:.1} tokens/s | slowest run {:.1} tokens/s |",
        rates[0]
    );
}

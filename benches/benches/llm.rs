//! The embedded LLM (SmolLM2-135M-Instruct on candle, f32 weights, CPU): time to first token
//! for a ~200-token prompt and decode speed. Prints Markdown rows for BENCHMARKS.md.
//!
//! Run: `cargo bench -p switchboard-benches --bench llm` (models fetched).

use std::time::{Duration, Instant};

use switchboard_benches::{models_dir, percentiles};
use switchboard_models::llm::{ChatRole, GenerateRequest, LlmToken, LocalLlm, LocalLlmConfig};
use switchboard_models::provision::catalog::SMOLLM2;

const RUNS: usize = 7;
const NEW_TOKENS: usize = 96;

fn main() {
    // SAFETY: before any other thread exists.
    unsafe { switchboard_models::llm::prefer_f32_weights() };
    let started = Instant::now();
    let llm =
        LocalLlm::load(LocalLlmConfig::new(models_dir().join(SMOLLM2))).expect("SmolLM2 loads");
    println!("model load: {:.2} s\n", started.elapsed().as_secs_f64());
    let system = "You are a helpful voice assistant for a restaurant booking line. Answer briefly, in plain \
        spoken sentences, without lists. You can tell callers about opening hours, which are noon to \
        ten at night every day except Monday, about the menu, which changes weekly and always has \
        vegetarian dishes, and about bookings, which need a name, a time and the number of guests. \
        Tables for more than eight guests need a call with the manager. Parking is free behind the \
        building, and the nearest metro station is a five minute walk away.";
    let user = "Hi, I would like to book a table for four people this Saturday at eight in the evening. \
        Is that possible, and do you have anything vegetarian on the menu?";
    let mut ttft = Vec::new();
    let mut rates = Vec::new();
    let mut prompt_tokens = 0;
    for run in 0..RUNS {
        let req = GenerateRequest {
            messages: vec![
                (ChatRole::System, system.into()),
                (ChatRole::User, user.into()),
            ],
            max_tokens: NEW_TOKENS,
            temperature: 0.7,
            seed: run as u64,
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
                    prompt_tokens: p,
                    output_tokens,
                } => {
                    prompt_tokens = p;
                    let first = first.unwrap_or_default();
                    let decode = asked.elapsed() - first;
                    ttft.push(first);
                    if output_tokens > 1 {
                        rates.push(Duration::from_secs_f64(
                            (output_tokens - 1) as f64 / decode.as_secs_f64(),
                        ));
                    }
                }
            }
        }
    }
    let (p50, p95) = percentiles(&mut ttft);
    println!("| measure | p50 | p95 |\n|---|---|---|");
    println!("| time to first token, {prompt_tokens}-token prompt | {p50:.0} ms | {p95:.0} ms |");
    // Rates are stored as Durations of "tokens per second" seconds to reuse the percentile helper.
    let (r50, _) = percentiles(&mut rates);
    let worst = rates.first().map_or(0.0, |d| d.as_secs_f64());
    println!(
        "| decode speed | {:.1} tokens/s | slowest run {worst:.1} tokens/s |",
        r50 / 1000.0
    );
}

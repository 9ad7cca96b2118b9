//! The embedded LLM (SmolLM2-135M-Instruct, our llama forward on candle: f32 prompts, Q8_0
//! decode, CPU): time to first token for a ~200-token prompt, cold and as a follow-up turn
//! whose persona is already in the KV cache, follow-up turns of several conversations taking
//! turns (one cached sequence against one per conversation), follow-up turns whose knowledge
//! context changes every turn (prompts assembled by the pipeline, context in the system
//! prompt against with the latest question), and decode speed. Prints Markdown rows for
//! BENCHMARKS.md.
//!
//! Run: `cargo bench -p switchboard-benches --bench llm` (models fetched).

use std::time::{Duration, Instant};

use switchboard_benches::restaurant::{FACTS, FOLLOW_UPS, PERSONA, QUESTIONS};
use switchboard_benches::{models_dir, percentiles};
use switchboard_models::llm::{ChatRole, GenerateRequest, LlmToken, LocalLlm, LocalLlmConfig};
use switchboard_models::provision::catalog::SMOLLM2;
use switchboard_pipeline::context::{
    ContextItem, ContextPart, PartKind, PromptInputs, approx_tokens, assemble, split_user_message,
};
use switchboard_pipeline::llm::{ChatMessage, to_turns};
use switchboard_pipeline::persona::DEFAULT_PROMPT_BUDGET;

const RUNS: usize = 9;
const NEW_TOKENS: usize = 96;

struct Run {
    first_token: Duration,
    rate: Option<f64>,
    prompt_tokens: usize,
    cached_tokens: usize,
    text: String,
}

fn ask(llm: &LocalLlm, system: String, user: &str, seed: u64) -> Run {
    let messages = vec![(ChatRole::System, system), (ChatRole::User, user.into())];
    converse(llm, messages, seed)
}

fn converse(llm: &LocalLlm, messages: Vec<(ChatRole, String)>, seed: u64) -> Run {
    generate(
        llm,
        GenerateRequest {
            messages,
            max_tokens: NEW_TOKENS,
            temperature: 0.7,
            seed,
            ..GenerateRequest::default()
        },
    )
}

fn generate(llm: &LocalLlm, req: GenerateRequest) -> Run {
    let asked = Instant::now();
    let mut stream = llm.generate(req);
    let mut first = None;
    let mut text = String::new();
    while let Some(t) = stream.next_blocking() {
        match t.expect("generation") {
            LlmToken::Text(t) => {
                first.get_or_insert_with(|| asked.elapsed());
                text.push_str(&t);
            }
            LlmToken::Done {
                prompt_tokens,
                cached_tokens,
                output_tokens,
            } => {
                let first_token = first.unwrap_or_else(|| asked.elapsed());
                let decode = asked.elapsed() - first_token;
                return Run {
                    first_token,
                    rate: (output_tokens > 1)
                        .then(|| (output_tokens - 1) as f64 / decode.as_secs_f64()),
                    prompt_tokens,
                    cached_tokens,
                    text,
                };
            }
        }
    }
    panic!("the stream ended without Done");
}

/// Three callers of one persona take turns: each asks its question, then each its follow-up
/// (whose prompt holds its own first exchange). Time to first token of the follow-ups, and
/// the prompt tokens they computed (not cached) of how many.
fn taking_turns(llm: &LocalLlm, round: usize) -> (Vec<Duration>, Vec<(usize, usize)>) {
    let system = format!("Round {round}. {PERSONA}");
    let firsts: Vec<_> = (0..3)
        .map(|c| {
            let user = QUESTIONS[(c + round) % 3];
            let r = ask(llm, system.clone(), user, (round * 3 + c) as u64);
            (user, r.text)
        })
        .collect();
    let mut times = Vec::new();
    let mut computed = Vec::new();
    for (c, (user, answer)) in firsts.into_iter().enumerate() {
        let messages = vec![
            (ChatRole::System, system.clone()),
            (ChatRole::User, user.to_owned()),
            (ChatRole::Assistant, answer),
            (ChatRole::User, FOLLOW_UPS[c].to_owned()),
        ];
        let r = converse(llm, messages, c as u64);
        times.push(r.first_token);
        computed.push((r.prompt_tokens - r.cached_tokens, r.prompt_tokens));
    }
    (times, computed)
}

/// Turns per caller in the changing-context calls.
const TURNS: usize = 8;

/// Later questions of those calls, after the follow-ups.
const LATER: [&str; 4] = [
    "Is there a children's menu?",
    "Can we sit on the terrace if it is warm?",
    "Do you have gluten-free pasta?",
    "Can I buy a gift voucher for a friend?",
];

fn questions(caller: usize) -> [&'static str; TURNS] {
    let later = |i: usize| LATER[(caller + i) % LATER.len()];
    [
        QUESTIONS[caller],
        FOLLOW_UPS[caller],
        FOLLOW_UPS[(caller + 1) % 3],
        FOLLOW_UPS[(caller + 2) % 3],
        later(0),
        later(1),
        later(2),
        later(3),
    ]
}

/// What a knowledge lookup found for a caller's turn: three passages, others every turn.
fn found(caller: usize, turn: usize) -> Vec<ContextPart> {
    let first = 3 * (caller * TURNS + turn);
    let items = (0..3)
        .map(|k| ContextItem {
            text: FACTS[(first + k) % FACTS.len()].into(),
            source: "restaurant.md".into(),
            score: 1.0 - k as f32 / 10.0,
        })
        .collect();
    vec![ContextPart {
        engine: "knowledge".into(),
        kind: PartKind::Knowledge,
        items,
    }]
}

/// Where a turn's context items go.
#[derive(Clone, Copy)]
enum Layout {
    /// At the end of the system prompt (as the pipeline did before).
    SystemPrompt,
    /// Before the latest question's words (as it does now); `named`: the request names its
    /// conversation, so the embedded model keeps a cache for it.
    LatestMessage { named: bool },
}

/// A caller's turn as the pipeline assembles it, given the replies so far; for
/// `SystemPrompt`, with the context moved back to where it used to be.
fn prompt(caller: usize, turn: usize, replies: &[String], layout: Layout) -> GenerateRequest {
    let asked = questions(caller);
    let mut history = Vec::new();
    for (question, reply) in asked.iter().zip(replies).take(turn) {
        history.push(ChatMessage::User((*question).into()));
        history.push(ChatMessage::Assistant {
            content: reply.clone(),
            tool_calls: vec![],
        });
    }
    history.push(ChatMessage::User(asked[turn].into()));
    let context = found(caller, turn);
    let inputs = PromptInputs {
        persona: PERSONA,
        history: &history,
        context: &context,
        summary: None,
        budget: DEFAULT_PROMPT_BUDGET,
    };
    let mut messages = to_turns(&assemble(&inputs, &approx_tokens).messages);
    let named = match layout {
        Layout::SystemPrompt => {
            let last = messages.len() - 1;
            let (sections, words) = match split_user_message(&messages[last].1) {
                (Some(sections), words) => (sections.to_owned(), words.to_owned()),
                (None, _) => panic!("the context goes before the question's words"),
            };
            messages[last].1 = words;
            messages[0].1 = format!("{}\n\n{sections}", messages[0].1);
            false
        }
        Layout::LatestMessage { named } => named,
    };
    GenerateRequest {
        messages,
        max_tokens: NEW_TOKENS,
        temperature: 0.7,
        seed: (caller * TURNS + turn) as u64,
        conversation: named.then(|| format!("caller-{caller}")),
        ..GenerateRequest::default()
    }
}

/// Three callers taking turns, each turn with new knowledge context: the replies are
/// generated once, then each layout asks for the first token of every turn with the same
/// questions, passages and earlier replies. Time to first token of the follow-up turns.
fn changing_context() {
    let llm = load(8);
    let mut replies = vec![Vec::new(); 3];
    for turn in 0..TURNS {
        for (caller, replies) in replies.iter_mut().enumerate() {
            let req = prompt(caller, turn, replies, Layout::LatestMessage { named: true });
            replies.push(generate(&llm, req).text);
        }
    }
    println!(
        "\n| turns 2-{TURNS}, knowledge context new every turn, 3 callers taking turns | p50 | p95 | turns 6-{TURNS} p50 | prompt tokens computed / prompt (medians) |\n|---|---|---|---|---|"
    );
    let rows = [
        (
            "context in the system prompt (before), 8 sequences",
            Layout::SystemPrompt,
            8,
        ),
        (
            "context with the latest question, named, 8 sequences",
            Layout::LatestMessage { named: true },
            8,
        ),
        (
            "context with the latest question, named, 3 sequences",
            Layout::LatestMessage { named: true },
            3,
        ),
        (
            "context with the latest question, not named, 3 sequences",
            Layout::LatestMessage { named: false },
            3,
        ),
    ];
    for (name, layout, sequences) in rows {
        let (mut times, mut late, mut computed, mut prompts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            let llm = load(sequences);
            ask(&llm, format!("Warm-up. {PERSONA}"), QUESTIONS[0], 0);
            for turn in 0..TURNS {
                for (caller, replies) in replies.iter().enumerate() {
                    let req = GenerateRequest {
                        max_tokens: 1,
                        ..prompt(caller, turn, replies, layout)
                    };
                    let r = generate(&llm, req);
                    if turn > 0 {
                        times.push(r.first_token);
                        computed.push(r.prompt_tokens - r.cached_tokens);
                        prompts.push(r.prompt_tokens);
                    }
                    if turn >= 5 {
                        late.push(r.first_token);
                    }
                }
            }
        }
        let (p50, p95) = percentiles(&mut times);
        let (late50, _) = percentiles(&mut late);
        computed.sort_unstable();
        prompts.sort_unstable();
        let (computed, prompt) = (computed[computed.len() / 2], prompts[prompts.len() / 2]);
        println!("| {name} | {p50:.0} ms | {p95:.0} ms | {late50:.0} ms | {computed} / {prompt} |");
    }
}

fn load(sequences: usize) -> LocalLlm {
    let mut cfg = LocalLlmConfig::new(models_dir().join(SMOLLM2));
    cfg.sequences = sequences;
    LocalLlm::load(cfg).expect("SmolLM2 loads")
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

    // Follow-up turns of three conversations taking turns, with one cached sequence (each
    // turn evicts the others) and with one per conversation (the default).
    let single = load(1);
    ask(&single, format!("Warm-up. {PERSONA}"), QUESTIONS[0], 0);
    println!(
        "\n| follow-up turns, 3 conversations taking turns | p50 | p95 | prompt tokens computed (median) |\n|---|---|---|---|"
    );
    for (name, llm) in [
        ("one cached sequence", &single),
        ("one sequence per conversation", &llm),
    ] {
        let (mut times, mut computed) = (Vec::new(), Vec::new());
        for round in 0..RUNS / 3 {
            let (t, c) = taking_turns(llm, round);
            times.extend(t);
            computed.extend(c);
        }
        let (p50, p95) = percentiles(&mut times);
        computed.sort_unstable();
        let (median, of) = computed[computed.len() / 2];
        println!("| {name} | {p50:.0} ms | {p95:.0} ms | {median} of {of} |");
    }

    changing_context();
}

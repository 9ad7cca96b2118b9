//! The embedded LLM with the real SmolLM2 GGUF: answers, ChatML turns, cancellation within a
//! token, context overflow, and a full queue.

mod common;

use std::time::{Duration, Instant};

use switchboard_models::llm::{
    ChatRole, GenerateRequest, LlmError, LlmToken, LocalLlm, LocalLlmConfig,
};
use switchboard_models::provision::catalog::SMOLLM2;

fn load(context: usize, queue: usize) -> LocalLlm {
    let mut cfg = LocalLlmConfig::new(common::models_dir().join(SMOLLM2));
    cfg.context_tokens = context;
    cfg.queue = queue;
    LocalLlm::load(cfg).expect("SmolLM2 loads")
}

fn ask(messages: Vec<(ChatRole, String)>) -> GenerateRequest {
    GenerateRequest {
        messages,
        max_tokens: 40,
        temperature: 0.0,
        ..GenerateRequest::default()
    }
}

/// What one generation gave back.
struct Reply {
    text: String,
    prompt: usize,
    /// Prompt tokens that came from the cache.
    cached: usize,
    output: usize,
}

fn reply(llm: &LocalLlm, req: GenerateRequest) -> Reply {
    let mut s = llm.generate(req);
    let mut text = String::new();
    while let Some(t) = s.next_blocking() {
        match t.expect("generation") {
            LlmToken::Text(t) => text.push_str(&t),
            LlmToken::Done {
                prompt_tokens,
                cached_tokens,
                output_tokens,
            } => {
                return Reply {
                    text,
                    prompt: prompt_tokens,
                    cached: cached_tokens,
                    output: output_tokens,
                };
            }
        }
    }
    panic!("stream ended without Done");
}

fn answer(llm: &LocalLlm, req: GenerateRequest) -> (String, usize, usize) {
    let r = reply(llm, req);
    (r.text, r.prompt, r.output)
}

/// The reply and how many prompt tokens came from the cache.
fn answer_cached(llm: &LocalLlm, req: GenerateRequest) -> (String, usize) {
    let r = reply(llm, req);
    (r.text, r.cached)
}

#[test]
fn answers_a_question_through_the_chat_template() {
    let llm = load(2048, 4);
    let (text, prompt, output) = answer(
        &llm,
        ask(vec![
            (
                ChatRole::System,
                "You are a helpful assistant. Answer in one short sentence.".into(),
            ),
            (ChatRole::User, "What is the capital of France?".into()),
        ]),
    );
    assert!(text.contains("Paris"), "{text:?}");
    assert!(!text.contains("<|im_"), "control tokens leaked: {text:?}");
    assert!(
        prompt > 20 && output > 0 && output <= 40,
        "{prompt} {output}"
    );
}

#[test]
fn dropping_the_stream_stops_generation_and_frees_the_worker() {
    let llm = load(2048, 4);
    let long = GenerateRequest {
        max_tokens: 400,
        ..ask(vec![(
            ChatRole::User,
            "Write a long story about a dragon.".into(),
        )])
    };
    let mut s = llm.generate(long);
    assert!(matches!(s.next_blocking(), Some(Ok(LlmToken::Text(_)))));
    drop(s);
    // The worker notices within a token and takes the next request; 400 tokens would take
    // seconds, so the next answer arriving at all (with a short limit) shows it stopped.
    let started = Instant::now();
    let (text, _, _) = answer(&llm, ask(vec![(ChatRole::User, "Say hello.".into())]));
    assert!(!text.is_empty());
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn long_histories_drop_the_oldest_turns() {
    let llm = load(256, 4);
    let mut messages = vec![(ChatRole::System, "Answer briefly.".into())];
    for i in 0..40 {
        messages.push((
            ChatRole::User,
            format!("Remember the number {i}, please, it matters a lot."),
        ));
        messages.push((ChatRole::Assistant, format!("I will remember {i}.")));
    }
    messages.push((ChatRole::User, "What is the capital of France?".into()));
    let (text, prompt, _) = answer(&llm, ask(messages));
    assert!(
        prompt <= 256 - 40,
        "prompt of {prompt} tokens does not leave room for the reply"
    );
    assert!(text.contains("Paris"), "{text:?}");
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let llm = load(2048, 1);
    let long = || GenerateRequest {
        max_tokens: 300,
        ..ask(vec![(
            ChatRole::User,
            "Count slowly to one hundred.".into(),
        )])
    };
    let mut running = llm.generate(long());
    assert!(running.next_blocking().is_some());
    let _queued = llm.generate(long());
    let mut refused = llm.generate(long());
    assert!(matches!(
        refused.next_blocking(),
        Some(Err(LlmError::Overloaded(1)))
    ));
}

#[test]
fn a_fixed_seed_gives_the_same_sampled_reply() {
    let llm = load(2048, 4);
    let req = || GenerateRequest {
        temperature: 0.9,
        seed: 42,
        ..ask(vec![(ChatRole::User, "Name three fruits.".into())])
    };
    let (first, _, _) = answer(&llm, req());
    let (second, _, _) = answer(&llm, req());
    assert!(!first.is_empty());
    assert_eq!(first, second);
}

#[test]
fn a_prompt_that_starts_like_the_last_one_reuses_the_cache_and_answers_the_same() {
    let system = "You are a helpful assistant for a bakery. Answer in one short sentence.";
    let turn = |q: &str| {
        ask(vec![
            (ChatRole::System, system.into()),
            (ChatRole::User, q.into()),
        ])
    };
    let warm = load(2048, 4);
    let (_, none) = answer_cached(&warm, turn("What is the capital of France?"));
    assert_eq!(none, 0, "the first prompt has nothing to reuse");
    let (reused_answer, reused) = answer_cached(&warm, turn("Do you sell rye bread?"));
    assert!(
        reused > 15,
        "the system turn should come from the cache: {reused}"
    );
    let (again, all) = answer_cached(&warm, turn("Do you sell rye bread?"));
    assert_eq!(
        again, reused_answer,
        "the same prompt again gives the same greedy answer"
    );
    let (_, prompt, _) = answer(&warm, turn("Do you sell rye bread?"));
    assert_eq!(
        all, prompt,
        "an identical prompt is served wholly from the cache"
    );

    let fresh = load(2048, 4);
    let (fresh_answer, _) = answer_cached(&fresh, turn("Do you sell rye bread?"));
    assert_eq!(
        reused_answer, fresh_answer,
        "reusing the cached system turn must not change the answer"
    );
}

#[test]
fn background_generation_gives_way_to_a_live_request() {
    let llm = load(2048, 4);
    let mut background = llm.generate(GenerateRequest {
        max_tokens: 400,
        background: true,
        ..ask(vec![(
            ChatRole::User,
            "Write a long story about a lighthouse.".into(),
        )])
    });
    // Wait until the worker is generating it.
    assert!(matches!(
        background.next_blocking(),
        Some(Ok(LlmToken::Text(_)))
    ));
    let live = llm.generate(ask(vec![(
        ChatRole::User,
        "What is the capital of France?".into(),
    )]));
    let mut stopped = None;
    while let Some(t) = background.next_blocking() {
        if let Err(e) = t {
            stopped = Some(e);
        }
    }
    assert!(matches!(stopped, Some(LlmError::Preempted)), "{stopped:?}");
    let mut live = live;
    let mut text = String::new();
    while let Some(t) = live.next_blocking() {
        if let LlmToken::Text(t) = t.expect("the live request is answered") {
            text.push_str(&t);
        }
    }
    assert!(text.contains("Paris"), "{text:?}");
}

#[test]
fn background_work_does_not_evict_the_live_conversation() {
    let llm = load(2048, 4);
    let live = || {
        ask(vec![
            (ChatRole::System, "You are a helpful assistant.".into()),
            (ChatRole::User, "Name a primary color.".into()),
        ])
    };
    let (_, prompt, _) = answer(&llm, live());
    let summary = GenerateRequest {
        background: true,
        ..ask(vec![(
            ChatRole::User,
            "Summarize in one sentence: the user asked for a primary color.".into(),
        )])
    };
    let (summary, _) = answer_cached(&llm, summary);
    assert!(!summary.is_empty());
    let (_, cached) = answer_cached(&llm, live());
    assert_eq!(
        cached, prompt,
        "the live sequence survived the background generation"
    );
}

#[test]
fn alternating_conversations_each_continue_from_their_own_cache() {
    let system = "You are a helpful assistant for a bakery. Answer in one short sentence.";
    let first = |q: &str| {
        vec![
            (ChatRole::System, system.to_owned()),
            (ChatRole::User, q.to_owned()),
        ]
    };
    let next = |mut turns: Vec<(ChatRole, String)>, answer: &str, q: &str| {
        turns.push((ChatRole::Assistant, answer.to_owned()));
        turns.push((ChatRole::User, q.to_owned()));
        turns
    };
    let llm = load(2048, 4);
    let a1 = reply(&llm, ask(first("Do you sell rye bread?")));
    let b1 = reply(&llm, ask(first("When do you open on Sunday?")));
    assert!(
        b1.cached > 15 && b1.cached < a1.prompt,
        "the second caller starts from the cached persona: {} of {}",
        b1.cached,
        b1.prompt
    );
    let a2_turns = next(
        first("Do you sell rye bread?"),
        &a1.text,
        "How much is a loaf?",
    );
    let a2 = reply(&llm, ask(a2_turns.clone()));
    assert!(
        a2.cached >= a1.prompt,
        "the first conversation survived the second: {} cached, its last prompt was {}",
        a2.cached,
        a1.prompt
    );
    let b2 = reply(
        &llm,
        ask(next(
            first("When do you open on Sunday?"),
            &b1.text,
            "And on Monday?",
        )),
    );
    assert!(
        b2.cached >= b1.prompt,
        "so did the second: {} cached, its last prompt was {}",
        b2.cached,
        b1.prompt
    );

    // Alone, the first conversation continues in its cache too (keys of its reply as they
    // were decoded), so the answers must be the very same.
    let alone = load(2048, 4);
    assert_eq!(
        reply(&alone, ask(first("Do you sell rye bread?"))).text,
        a1.text
    );
    assert_eq!(
        reply(&alone, ask(a2_turns)).text,
        a2.text,
        "taking turns with another conversation must not change the answer"
    );
}

/// Two calls of one persona taking turns on two caches, the way the gateway prompts them:
/// each turn's context goes before the latest question's words and is gone from it the
/// turn after. Returns how many of the second call's third prompt came from the cache.
fn second_caller_third_turn_cached(named: bool) -> usize {
    let mut cfg = LocalLlmConfig::new(common::models_dir().join(SMOLLM2));
    cfg.sequences = 2;
    let llm = LocalLlm::load(cfg).expect("SmolLM2 loads");
    let system = "You take orders for a bakery. Answer in one short sentence.";
    let mut calls = [
        vec![(ChatRole::System, system.to_owned())],
        vec![(ChatRole::System, system.to_owned())],
    ];
    let mut turn = |call: usize, question: &str, context: &str| {
        let mut messages = calls[call].clone();
        messages.push((
            ChatRole::User,
            format!("## Reference material\n[1] (menu.md) {context}\n\n## The user's message\n{question}"),
        ));
        let r = reply(
            &llm,
            GenerateRequest {
                conversation: named.then(|| format!("call-{call}")),
                ..ask(messages)
            },
        );
        calls[call].push((ChatRole::User, question.to_owned()));
        calls[call].push((ChatRole::Assistant, r.text.clone()));
        r
    };
    turn(
        0,
        "Do you sell rye bread?",
        "Rye loaves are baked on Tuesdays.",
    );
    turn(
        1,
        "Can I order a birthday cake?",
        "Cakes need two days' notice.",
    );
    let second = turn(
        1,
        "Is chocolate possible?",
        "Chocolate sponge is available.",
    );
    turn(0, "How much is a loaf?", "A rye loaf costs four euros.");
    turn(0, "Do you deliver?", "Deliveries run within the city.");
    let third = turn(1, "And candles?", "Candles are sold at the counter.");
    assert!(
        second.cached > 10,
        "the persona came from the cache: {}",
        second.cached
    );
    third.cached.saturating_sub(second.cached)
}

#[test]
fn a_named_conversation_keeps_its_cache_while_another_takes_turns() {
    // Named, the second call's third turn finds its first question and answer cached
    // (only the question that lost its context, and what follows, are computed).
    let named = second_caller_third_turn_cached(true);
    assert!(
        named > 10,
        "its first exchange should come from its own cache: {named} more tokens than the persona"
    );
    // Unnamed, the first call's turns fork into the second call's cache and evict it.
    let unnamed = second_caller_third_turn_cached(false);
    assert!(
        unnamed < named,
        "without names the other call's turns should have evicted it: {unnamed} against {named}"
    );
}

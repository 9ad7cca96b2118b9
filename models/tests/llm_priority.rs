//! The embedded LLM's threads run below the speech engines (nice 10): its worker, its rayon
//! pool, and candle's pool, whichever thread made that first. One test in its own binary, so
//! that it alone decides who makes candle's pool (it is one per process).

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use switchboard_models::llm::{ChatRole, GenerateRequest, LlmToken, LocalLlm, LocalLlmConfig};
use switchboard_models::provision::catalog::SMOLLM2;

/// The nice value of each of this process's threads whose name `matches`.
fn thread_niceness(matches: impl Fn(&str) -> bool) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc") {
        let dir = task.expect("task").path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let name = name.trim().to_owned();
        if !matches(&name) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).expect("stat");
        // Fields after the parenthesised name start at field 3 (state); nice is field 19.
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let nice = after
            .split(' ')
            .nth(16)
            .expect("nice")
            .parse()
            .expect("number");
        found.push((name, nice));
    }
    found
}

#[test]
fn the_llm_threads_run_below_the_speech_engines() {
    // candle's pool made first by a thread at normal priority, as the embedder (loaded
    // before the LLM in the gateway) makes it.
    let _ = candle_core::utils::barrier_pool();
    let candle = || thread_niceness(|n| n.starts_with("candle-bp-"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Each pool thread names itself as it starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cores > 1 && candle().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = candle();
    assert!(cores < 2 || !before.is_empty(), "no pool threads");
    assert!(before.iter().all(|(_, nice)| *nice == 0), "{before:?}");

    let llm = LocalLlm::load(LocalLlmConfig::new(common::models_dir().join(SMOLLM2)))
        .expect("SmolLM2 loads");
    // A prompt long enough to run on the worker's own rayon pool.
    let mut stream = llm.generate(GenerateRequest {
        messages: vec![(
            ChatRole::User,
            "Name three colors of the rainbow, please, in one short sentence.".into(),
        )],
        max_tokens: 16,
        temperature: 0.0,
        ..GenerateRequest::default()
    });
    let mut text = String::new();
    while let Some(t) = stream.next_blocking() {
        if let LlmToken::Text(t) = t.expect("generation") {
            text.push_str(&t);
        }
    }
    assert!(!text.is_empty());

    // The worker and its rayon pool's threads (`llm-0`, `llm-1`, ...).
    let pool = |n: &str| {
        n.strip_prefix("llm-")
            .is_some_and(|i| i.parse::<usize>().is_ok())
    };
    let threads = thread_niceness(|n| n == "llm-worker" || pool(n));
    assert!(
        threads.iter().any(|(n, _)| n == "llm-worker"),
        "{threads:?}"
    );
    assert!(threads.iter().any(|(n, _)| n == "llm-0"), "{threads:?}");
    assert!(threads.iter().all(|(_, nice)| *nice == 10), "{threads:?}");
    // candle's pool too, though it was made at normal priority: the worker lowered it as it
    // started, before the request.
    let after = candle();
    assert!(after.len() == before.len(), "{before:?} then {after:?}");
    assert!(after.iter().all(|(_, nice)| *nice == 10), "{after:?}");
}

//! Shared by the call tests (`realtime.rs`, `drafts.rs`, `out_of_band.rs`...): the test
//! question, what to check in a call's events, and reading `/metrics`.
#![allow(dead_code, unused_imports)] // each test binary uses some of these

use std::time::Duration;

use serde_json::json;
pub use switchboard_e2e::gateway::metric;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

pub const RATE: u32 = 24_000;
pub const LONG: Duration = Duration::from_secs(30);

/// Turn detection by `server_vad` with this much silence ending a turn, for the call.
pub async fn set_turn_silence(c: &mut RealtimeClient, silence_ms: u32) {
    set_turn_detection(
        c,
        json!({"type": "server_vad", "silence_duration_ms": silence_ms}),
    )
    .await;
}

/// Set the call's `turn_detection`; returns it as the session now renders it.
pub async fn set_turn_detection(
    c: &mut RealtimeClient,
    turn_detection: serde_json::Value,
) -> serde_json::Value {
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"turn_detection": turn_detection}}}}),
    )
    .await
    .unwrap();
    let updated = c.wait_for("session.updated", LONG).await.unwrap();
    updated.event["session"]["audio"]["input"]["turn_detection"].clone()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn question() -> Vec<i16> {
    let mut audio = silence(300, RATE);
    audio.extend(say("What is the weather like in Paris today?", RATE));
    audio.extend(silence(1_200, RATE));
    audio
}

pub fn transcript_of(c: &RealtimeClient, kind: &str, field: &str) -> String {
    c.of_kind(kind)
        .iter()
        .map(|r| r.event[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The caller's transcript holds the words of `question()`.
pub fn assert_heard_the_weather_question(c: &RealtimeClient) {
    let heard = transcript_of(
        c,
        "conversation.item.input_audio_transcription.completed",
        "transcript",
    )
    .to_lowercase();
    assert!(
        heard.contains("weather") && heard.contains("paris"),
        "user transcript: {heard}"
    );
}

/// The last request the LLM got answers the interruption (`about`) with the interrupted
/// reply cut to a short prefix: what the caller heard.
pub fn assert_answered_with_only_the_heard_part(llm: &ScriptedLlm, about: &str) {
    let reqs = llm.requests();
    let msgs = reqs.last().unwrap()["messages"].as_array().unwrap().clone();
    let assistant = msgs.iter().find(|m| m["role"] == "assistant").unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let full = Script::default().reply;
    assert!(
        !assistant.is_empty() && full.starts_with(&assistant) && assistant.len() < full.len() / 2,
        "assistant history {assistant:?} is not a short prefix of the reply"
    );
    let user = msgs.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(user.contains(about), "{user}");
}

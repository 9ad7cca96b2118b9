//! `semantic_vad` end to end: the real gateway judges the caller's pauses by their transcript.
//! A pause after "... my flight because" does not end the turn, though it is longer than the
//! silence that ends a `server_vad` turn; the same audio under `server_vad` is cut in two.
//! The judgement needs the early transcription back within the pause, so these calls run in
//! a test binary of their own, one at a time (as `drafts.rs` does).

use serde_json::json;
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

mod calls;
use calls::*;

/// "I need to change my flight because", a pause, "my meeting moved to Friday." espeak-ng
/// ends its speech with ~390 ms of silence: the pause is ~900 ms in all.
fn sentence_with_a_pause() -> Vec<i16> {
    let mut audio = silence(300, RATE);
    audio.extend(say("I need to change my flight because", RATE));
    audio.extend(silence(500, RATE));
    audio.extend(say("my meeting moved to Friday.", RATE));
    audio
}

/// Stream `audio` on a session with `turn_detection`, then silence until the turns are
/// answered; returns the client with its events.
async fn call(gw: &Gateway, turn_detection: serde_json::Value, audio: &[i16]) -> RealtimeClient {
    let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"turn_detection": turn_detection}}}}),
    )
    .await
    .unwrap();
    let updated = c.wait_for("session.updated", LONG).await.unwrap();
    let td = &updated.event["session"]["audio"]["input"]["turn_detection"];
    assert_eq!(td["type"], turn_detection["type"], "{td}");
    c.stream_audio(audio, RATE).await.unwrap();
    c.stream_audio(&silence(3_000, RATE), RATE).await.unwrap();
    c.wait_for("response.done", LONG).await.unwrap();
    c
}

fn turn_ends(metrics: &str, by: &str) -> f64 {
    metric(
        metrics,
        &format!(r#"switchboard_turn_ends_total{{by="{by}"}}"#),
    )
}

#[test]
fn a_pause_after_an_unfinished_phrase_does_not_end_a_semantic_turn() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        // `high`: a turn that reads as finished ends once transcribed, one that does not waits
        // up to 2 s.
        let semantic = json!({"type": "semantic_vad", "eagerness": "high"});
        let c = call(&gw, semantic, &sentence_with_a_pause()).await;
        let committed = c.of_kind("input_audio_buffer.committed").len();
        let heard = transcript_of(
            &c,
            "conversation.item.input_audio_transcription.completed",
            "transcript",
        )
        .to_lowercase();
        assert_eq!(committed, 1, "{heard:?}: {:?}", c.kinds());
        assert!(
            heard.contains("flight") && heard.contains("friday"),
            "one turn with both parts: {heard}"
        );
        // The reply was asked with the whole sentence.
        let asked = llm.requests().last().unwrap()["messages"].to_string();
        assert!(asked.to_lowercase().contains("friday"), "{asked}");
        c.close().await;
    });
    let m = gw.metrics();
    assert_eq!(turn_ends(&m, "finished"), 1.0, "{m}");
    assert!(
        metric(
            &m,
            r#"switchboard_early_transcriptions_total{outcome="cancelled"}"#
        ) >= 1.0,
        "the inner pause was transcribed and judged, then speech went on:\n{m}"
    );

    // The same audio under server_vad: its 500 ms silence ends a turn at the inner pause.
    runtime().block_on(async {
        let c = call(&gw, json!({"type": "server_vad"}), &sentence_with_a_pause()).await;
        assert_eq!(
            c.of_kind("input_audio_buffer.committed").len(),
            2,
            "{:?}",
            c.kinds()
        );
        c.close().await;
    });
    assert!(turn_ends(&gw.metrics(), "silence") >= 2.0);
}

//! Turn detection end to end, on the real gateway:
//!
//! - `semantic_vad` judges the caller's pauses by their transcript. A pause after "... my
//!   flight because" does not end the turn, though it is longer than the silence that ends a
//!   `server_vad` turn; the same audio under `server_vad` is cut in two. The judgement needs
//!   the early transcription back within the pause, so these calls run in a test binary of
//!   their own, one at a time (as `drafts.rs` does).
//!   In Spanish too, with a multilingual model: "... una mesa para" waits for the rest.
//!   And by how they sound (Smart Turn): "My account number is, um" comes back as "My
//!   account where is", which the words leave unsure; the model hears it unfinished.
//! - `idle_timeout_ms`: a caller who stays quiet after a reply is asked whether they are
//!   still there.

use std::sync::Mutex;

use serde_json::json;
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say_in, silence};

mod calls;
use calls::*;

/// One call at a time.
static ALONE: Mutex<()> = Mutex::new(());

/// `first` and `rest` said by espeak-ng's `voice` with a pause between. espeak-ng ends its
/// speech with ~390 ms of silence: the pause is ~900 ms in all.
fn said_with_a_pause(voice: &str, first: &str, rest: &str) -> Vec<i16> {
    let mut audio = silence(300, RATE);
    audio.extend(say_in(voice, first, RATE));
    audio.extend(silence(500, RATE));
    audio.extend(say_in(voice, rest, RATE));
    audio
}

/// "I need to change my flight because", a pause, "my meeting moved to Friday."
fn sentence_with_a_pause() -> Vec<i16> {
    said_with_a_pause(
        "en-us",
        "I need to change my flight because",
        "my meeting moved to Friday.",
    )
}

/// Stream `audio` on a session with `turn_detection`, then silence until the turns are
/// answered; returns the client with its events.
async fn call(gw: &Gateway, turn_detection: serde_json::Value, audio: &[i16]) -> RealtimeClient {
    let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
    let td = set_turn_detection(&mut c, turn_detection.clone()).await;
    assert_eq!(td["type"], turn_detection["type"], "{td}");
    speak_and_wait(&mut c, audio).await;
    c
}

/// Stream `audio`, then silence until the turns are answered.
async fn speak_and_wait(c: &mut RealtimeClient, audio: &[i16]) {
    c.stream_audio(audio, RATE).await.unwrap();
    c.stream_audio(&silence(3_000, RATE), RATE).await.unwrap();
    c.wait_for("response.done", LONG).await.unwrap();
}

/// The call committed one turn, whose transcript holds every one of `words` (from both
/// sides of the pause).
fn assert_one_turn_with(c: &RealtimeClient, words: &[&str]) {
    let heard = transcript_of(
        c,
        "conversation.item.input_audio_transcription.completed",
        "transcript",
    )
    .to_lowercase();
    let committed = c.of_kind("input_audio_buffer.committed").len();
    assert_eq!(committed, 1, "{heard:?}: {:?}", c.kinds());
    assert!(
        words.iter().all(|w| heard.contains(w)),
        "one turn with both parts: {heard}"
    );
}

fn turn_ends(metrics: &str, by: &str) -> f64 {
    metric(
        metrics,
        &format!(r#"switchboard_turn_ends_total{{by="{by}"}}"#),
    )
}

/// The pause inside the sentence was transcribed (and judged), then speech went on.
fn assert_inner_pause_transcribed(metrics: &str) {
    assert!(
        metric(
            metrics,
            r#"switchboard_early_transcriptions_total{outcome="cancelled"}"#
        ) >= 1.0,
        "the inner pause was transcribed and judged, then speech went on:\n{metrics}"
    );
}

#[test]
fn a_pause_after_an_unfinished_phrase_does_not_end_a_semantic_turn() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        // `high`: a turn that reads as finished ends once transcribed, one that does not waits
        // up to 2 s.
        let semantic = json!({"type": "semantic_vad", "eagerness": "high"});
        let c = call(&gw, semantic, &sentence_with_a_pause()).await;
        assert_one_turn_with(&c, &["flight", "friday"]);
        // The reply was asked with the whole sentence.
        let asked = llm.requests().last().unwrap()["messages"].to_string();
        assert!(asked.to_lowercase().contains("friday"), "{asked}");
        c.close().await;
    });
    let m = gw.metrics();
    // The whole sentence ended the turn: finished, or unsure where Smart Turn did not hear it
    // as complete (it scores this espeak-ng sentence with its long pause at ~0.02).
    assert_eq!(
        turn_ends(&m, "finished") + turn_ends(&m, "unsure"),
        1.0,
        "{m}"
    );
    assert_inner_pause_transcribed(&m);

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

/// A Spanish sentence, judged by Spanish words: Whisper base hears the cut half as "Quiero
/// ser varo a mesa para." Its full stop would end the turn; "para" waits for its object.
#[test]
fn a_pause_after_para_does_not_end_a_spanish_semantic_turn() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_STT_MODEL", "base")]);
    let audio = said_with_a_pause(
        "es",
        "Quiero reservar una mesa para",
        "dos personas esta noche.",
    );
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        c.send(
            json!({"type": "session.update", "session": {"type": "realtime",
            "audio": {"input": {"transcription": {"language": "es"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}}),
        )
        .await
        .unwrap();
        let updated = c.wait_for("session.updated", LONG).await.unwrap();
        let input = &updated.event["session"]["audio"]["input"];
        assert_eq!(
            (
                &input["transcription"]["language"],
                &input["turn_detection"]["type"]
            ),
            (&json!("es"), &json!("semantic_vad"))
        );
        speak_and_wait(&mut c, &audio).await;
        assert_one_turn_with(&c, &["mesa", "noche"]);
        c.close().await;
    });
    let m = gw.metrics();
    // The whole sentence ended the turn ("... esta noche." or, unpunctuated, unsure).
    assert_eq!(
        turn_ends(&m, "finished") + turn_ends(&m, "unsure"),
        1.0,
        "{m}"
    );
    assert_inner_pause_transcribed(&m);
}

/// A pause the words leave unsure: Whisper tiny.en hears "My account number is, um" as "My
/// account where is", no end punctuation, which `high` would end after 400 ms, inside the
/// ~900 ms pause. Smart Turn hears it as unfinished (~0.01), so the turn waits up to 2 s.
#[test]
fn a_pause_that_does_not_sound_finished_does_not_end_a_semantic_turn() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    let audio = said_with_a_pause("en-us", "My account number is, um", "four five six seven.");
    runtime().block_on(async {
        let semantic = json!({"type": "semantic_vad", "eagerness": "high"});
        let c = call(&gw, semantic, &audio).await;
        assert_one_turn_with(&c, &["account"]);
        c.close().await;
    });
    let m = gw.metrics();
    assert_inner_pause_transcribed(&m);
    assert!(
        metric(&m, "switchboard_end_of_turn_model_seconds_count") >= 2.0,
        "Smart Turn heard the inner pause and the end:\n{m}"
    );
}

#[test]
fn a_quiet_caller_is_asked_whether_they_are_still_there() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        let td = json!({"type": "server_vad", "idle_timeout_ms": 1_500});
        let td = set_turn_detection(&mut c, td).await;
        assert_eq!(td["idle_timeout_ms"], 1_500);
        c.stream_audio(&question(), RATE).await.unwrap();
        c.wait_for("response.done", LONG).await.unwrap();
        // The reply has played; the caller's microphone stays open and quiet.
        c.stream_audio(&silence(3_000, RATE), RATE).await.unwrap();
        let timeout = c
            .wait_for("input_audio_buffer.timeout_triggered", LONG)
            .await
            .unwrap()
            .event;
        let (start, end) = (
            timeout["audio_start_ms"].as_u64().unwrap(),
            timeout["audio_end_ms"].as_u64().unwrap(),
        );
        assert!((1_500..1_700).contains(&(end - start)), "{timeout}");
        let item_id = timeout["item_id"].as_str().unwrap().to_owned();
        let done = c.wait_for("response.done", LONG).await.unwrap();
        assert_eq!(done.event["response"]["status"], "completed");
        let committed = c.of_kind("input_audio_buffer.committed");
        assert_eq!(committed.last().unwrap().event["item_id"], item_id.as_str());
        let transcribed = c.of_kind("conversation.item.input_audio_transcription.completed");
        let last = &transcribed.last().unwrap().event;
        assert_eq!(
            (&last["item_id"], &last["transcript"]),
            (&json!(item_id), &json!(""))
        );
        assert_eq!(
            c.of_kind("input_audio_buffer.timeout_triggered").len(),
            1,
            "once per quiet spell"
        );
        c.close().await;
    });
    // The agent was told why it speaks: the empty turn has no words to answer.
    let asked = llm.requests().last().unwrap()["messages"][0]["content"].to_string();
    assert!(asked.contains("said nothing for 2 seconds"), "{asked}");
    assert_eq!(llm.requests().len(), 2, "the question and the check-in");
}

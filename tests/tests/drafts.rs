//! Speculative replies end to end: the real gateway drafts a reply while the caller pauses,
//! and the caller hears it only if the turn ends as predicted. Whether a draft is ready in
//! time depends on Whisper finishing within the pause, so these tests run one at a time in a
//! binary of their own (test binaries run one after another): beside other calls on two
//! cores, a transcription took seconds.

use std::sync::Mutex;

use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say, silence};

mod calls;
use calls::*;

/// One call at a time.
static ALONE: Mutex<()> = Mutex::new(());

/// A pause inside a sentence: the reply drafted for the words before it is dropped unheard,
/// and the reply drafted once the whole question is in is the one the caller hears.
#[test]
fn a_pause_inside_a_sentence_neither_ends_the_turn_nor_loses_words() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        // A 700 ms gap plus espeak's own trailing and leading silence: past the early
        // transcription's 160 ms and long enough for its transcript to start a draft,
        // short of a 1300 ms turn silence.
        set_turn_silence(&mut c, 1300).await;
        let mut audio = silence(300, RATE);
        audio.extend(say("What is the weather like", RATE));
        audio.extend(silence(700, RATE));
        audio.extend(say("in Paris today?", RATE));
        audio.extend(silence(2_000, RATE));
        c.stream_audio(&audio, RATE).await.unwrap();
        c.wait_for("response.done", LONG).await.unwrap();
        assert_eq!(
            c.of_kind("input_audio_buffer.committed").len(),
            1,
            "{:?}",
            c.kinds()
        );
        assert_eq!(c.of_kind("response.created").len(), 1, "{:?}", c.kinds());
        assert_heard_the_weather_question(&c);
        let said = transcript_of(&c, "response.output_audio_transcript.delta", "delta");
        assert_eq!(said, Script::default().reply);
        // The reply heard was asked with the whole question.
        let last = llm.requests().last().unwrap()["messages"].clone();
        let question = last.as_array().unwrap().last().unwrap()["content"].to_string();
        assert!(question.to_lowercase().contains("paris"), "{question}");
        c.close().await;
    });
    let m = gw.metrics();
    for (counter, outcome) in [
        ("early_transcriptions", "cancelled"),
        ("early_transcriptions", "used"),
        ("speculative_replies", "cancelled"),
        ("speculative_replies", "used"),
    ] {
        let name = format!(r#"switchboard_{counter}_total{{outcome="{outcome}"}}"#);
        assert!(metric(&m, &name) >= 1.0, "{name} not recorded:\n{m}");
    }
}

/// A caller who talks over the agent is answered by the reply drafted while they paused:
/// it was asked with the interrupted reply already cut to what they heard, so the response
/// their turn starts takes it.
#[test]
fn a_barge_in_is_answered_by_its_draft() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[]);
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
        // A long turn silence, so that each draft is ready well before its turn ends.
        set_turn_silence(&mut c, 1800).await;
        let mut ask = question();
        ask.extend(silence(1_000, RATE));
        c.stream_audio(&ask, RATE).await.unwrap();
        c.wait_for("response.output_audio.delta", LONG)
            .await
            .unwrap();
        c.stream_audio(&silence(2_000, RATE), RATE).await.unwrap();
        // The pause after "Stop." may draft a reply to that word alone, dropped unheard when
        // speech goes on.
        let mut talk = say("Stop. Tell me about London instead.", RATE);
        talk.extend(silence(2_500, RATE));
        c.stream_audio(&talk, RATE).await.unwrap();
        let first = c.wait_for("response.done", LONG).await.unwrap();
        assert_eq!(first.event["response"]["status"], "cancelled");
        let second = c.wait_for("response.done", LONG).await.unwrap();
        assert_eq!(second.event["response"]["status"], "completed");
        assert_eq!(c.of_kind("response.created").len(), 2, "{:?}", c.kinds());
        assert_answered_with_only_the_heard_part(&llm, "london");
        // The reply the caller hears is the scripted one, whole.
        let second_id = second.event["response"]["id"].as_str().unwrap().to_owned();
        let said = c.response_deltas("response.output_audio_transcript.delta", &second_id);
        assert_eq!(said, Script::default().reply);
        c.close().await;
    });
    let m = gw.metrics();
    let drafts = |outcome: &str| {
        metric(
            &m,
            &format!(r#"switchboard_speculative_replies_total{{outcome="{outcome}"}}"#),
        )
    };
    // The question's draft and the interruption's, and none asked with another conversation.
    assert!(drafts("used") >= 2.0, "{m}");
    assert_eq!((drafts("stale"), drafts("failed")), (0.0, 0.0), "{m}");
}

//! Languages other than English end to end: the gateway serving the multilingual Whisper
//! base model, a Realtime session and uploads (the Python SDK) in German, and a session that
//! names no language hearing its German caller.
//!
//! The tests run one at a time: each serves Whisper base, whose worker takes both cores of a
//! CI machine, and two such gateways at once starve each other (a language detection of
//! ~2 s took 21 s beside the other test's gateway, and once past the 30 s a turn may take).

use std::ffi::OsStr;
use std::sync::Mutex;

use serde_json::json;
use switchboard_e2e::gateway::Gateway;
use switchboard_e2e::python::run_sdk_script;
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say_in, silence, write_wav};

mod calls;
use calls::*;

/// One gateway at a time.
static ALONE: Mutex<()> = Mutex::new(());

/// With a multilingual model (`SWITCHBOARD_STT_MODEL=base`), a session that names German
/// hears German, and uploads are detected or told (`language_sdk.py`); the default
/// English-only model refuses the session's language by name.
#[test]
fn a_session_in_german_is_transcribed_in_german_by_a_multilingual_model() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let english = Gateway::start(&[llm.base_url()], &[]);
    let base = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_STT_MODEL", "base")]);
    let update = json!({"type": "session.update", "session": {"type": "transcription",
        "audio": {"input": {"transcription": {"language": "de"}}}}});
    runtime().block_on(async {
        let mut c = RealtimeClient::connect(&english.ws_url()).await.unwrap();
        c.send(update.clone()).await.unwrap();
        let e = c.wait_for("error", LONG).await.unwrap();
        assert_eq!(
            e.event["error"]["param"], "session.audio.input.transcription.language",
            "{}",
            e.event
        );
        c.close().await;

        // Spoken to anyway, the English-only model's decoding loops ("I am a man, I am a
        // man, …"): it is stopped, one copy is kept, and the metric tells the operator.
        let mut c = RealtimeClient::connect(&english.ws_url()).await.unwrap();
        c.send(json!({"type": "session.update", "session": {"type": "transcription"}}))
            .await
            .unwrap();
        c.wait_for("session.updated", LONG).await.unwrap();
        let mut audio = say_in("de", LOOPS_IN_ENGLISH, RATE);
        audio.extend(silence(1200, RATE));
        c.stream_audio(&audio, RATE).await.unwrap();
        let heard = next_transcript(&mut c).await;
        assert!(heard.split_whitespace().count() < 12, "{heard}");
        c.close().await;
        let loops = metric(
            &english.metrics(),
            r#"switchboard_stt_loops_stopped_total{language="en"}"#,
        );
        assert_eq!(loops, 1.0, "{heard}");

        let mut c = RealtimeClient::connect(&base.ws_url()).await.unwrap();
        c.send(update).await.unwrap();
        let updated = c.wait_for("session.updated", LONG).await.unwrap();
        let t = &updated.event["session"]["audio"]["input"]["transcription"];
        assert_eq!(
            (t["language"].as_str(), t["model"].as_str()),
            (Some("de"), Some("whisper-base"))
        );
        let mut audio = say_in("de", GERMAN, RATE);
        audio.extend(silence(1200, RATE));
        c.stream_audio(&audio, RATE).await.unwrap();
        let heard = next_transcript(&mut c).await;
        assert!(
            heard.contains("morgen") && heard.contains("tisch"),
            "{heard}"
        );
        c.close().await;
    });
    // Uploads to the same gateway: detected without a language, transcribed when told.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("de.wav");
    write_wav(&wav, &say_in("de", GERMAN, RATE), RATE);
    run_sdk_script(
        "language_sdk.py",
        &[
            OsStr::new(&format!("http://{}/v1", base.addr)),
            wav.as_os_str(),
        ],
    );
}

/// The next turn's transcript, lower-cased.
async fn next_transcript(c: &mut RealtimeClient) -> String {
    let done = c
        .wait_for(
            "conversation.item.input_audio_transcription.completed",
            LONG,
        )
        .await
        .unwrap();
    done.event["transcript"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
}

const GERMAN: &str = "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.";
/// German that tiny.en, told English, decodes as a loop (BENCHMARKS.md "Repetition loops").
const LOOPS_IN_ENGLISH: &str =
    "Können wir bitte auf Deutsch weitermachen? Mein Englisch ist nicht so gut.";

/// A session that names no language, on a multilingual model, detects its caller's and
/// keeps it. In the first call the first turn is long: its language is detected on its first
/// seconds while the caller goes on, so it and the next turn are both transcribed in German.
/// In the second the first turn is too short to learn from: it is kept, and the second
/// turn's detection, early in its speech, hears it too. Each call detected once, while the
/// caller spoke.
#[test]
fn a_session_naming_no_language_detects_the_callers_and_keeps_it() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let base = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_STT_MODEL", "base")]);
    let first =
        format!("{GERMAN} Wir sind zu zweit und kommen heute Abend um acht Uhr mit dem Auto.");
    let long_first: [Turn; 2] = [
        ("de", first.as_str(), &["morgen", "tisch"]),
        (
            "de",
            "Ich muss meinen Flug ändern, weil mein Termin verschoben wurde.",
            &["ich muss", "meinen"],
        ),
    ];
    // Each ~1.6 s of espeak-ng speech: under 2 s with the turn's padding.
    let short_first: [Turn; 2] = [
        ("de", "Ich hätte gern einen Tisch.", &[]),
        ("de", "Wir kommen zu zweit.", &["kommen"]),
    ];
    runtime().block_on(async {
        call(&base, &long_first).await;
        call(&base, &short_first).await;
    });
    let m = base.metrics();
    let detected = |from: &str| {
        metric(
            &m,
            &format!(r#"switchboard_languages_detected_total{{from="{from}",language="de"}}"#),
        )
    };
    assert_eq!((detected("speech"), detected("turn")), (2.0, 0.0), "{m}");
}

/// A caller who switches language mid-call is followed: a German call's English turn is
/// transcribed in English (not as German, nor a translation), and so is the next, short
/// one; a German turn then switches it back. Each switch is counted.
#[test]
fn a_caller_who_switches_language_mid_call_is_followed() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let llm = ScriptedLlm::start(Script::default());
    let base = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_STT_MODEL", "base")]);
    let turns: [Turn; 4] = [
        ("de", GERMAN, &["morgen", "tisch"]),
        (
            "en-us",
            "Sorry, could we please continue in English? My German is not very good.",
            &["english", "german"],
        ),
        ("en-us", "Thank you so much.", &["thank"]),
        ("de", LOOPS_IN_ENGLISH, &["deutsch"]),
    ];
    runtime().block_on(call(&base, &turns));
    let m = base.metrics();
    let counted = |from: &str, language: &str| {
        metric(
            &m,
            &format!(
                r#"switchboard_languages_detected_total{{from="{from}",language="{language}"}}"#
            ),
        )
    };
    assert_eq!(
        (
            counted("speech", "de"),
            counted("switch", "en"),
            counted("switch", "de")
        ),
        (1.0, 1.0, 1.0),
        "{m}"
    );
}

/// A turn: espeak-ng's voice, what it says, and words its transcript must hold.
type Turn<'a> = (&'a str, &'a str, &'a [&'a str]);

/// A transcription session naming no language hears `turns`, each followed by silence:
/// each transcript holds the turn's words.
async fn call(gw: &Gateway, turns: &[Turn<'_>]) {
    let mut c = RealtimeClient::connect(&gw.ws_url()).await.unwrap();
    c.send(json!({"type": "session.update", "session": {"type": "transcription"}}))
        .await
        .unwrap();
    let updated = c.wait_for("session.updated", LONG).await.unwrap();
    let t = &updated.event["session"]["audio"]["input"]["transcription"];
    assert!(t["language"].is_null(), "{t}");
    for (voice, said, words) in turns {
        let mut audio = say_in(voice, said, RATE);
        audio.extend(silence(1200, RATE));
        c.skip_seen();
        c.stream_audio(&audio, RATE).await.unwrap();
        let heard = next_transcript(&mut c).await;
        assert!(words.iter().all(|w| heard.contains(w)), "{said} -> {heard}");
    }
    c.close().await;
}

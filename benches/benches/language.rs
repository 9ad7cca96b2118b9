//! What language detection costs: each multilingual Whisper model transcribes the same clips
//! with the language named and with it detected (`DETECT_LANGUAGE`: one more encoder pass
//! over Whisper's full 30 s window, on the worker's detection state). English clips are the
//! STT bench's 1, 3 and 10 s utterances; the German one is a 5 s sentence. Then as a call's
//! turn once its language is learnt: the clip's own (the check that it still is, one decoder
//! step), and another (English for German, German for English: the check, the full-window
//! detection and a second decoding, the cost of a caller's switch; under 2 s of audio is
//! not checked). Prints Markdown rows for BENCHMARKS.md, with the languages heard.
//!
//! Then, in a call (`LANGUAGE_BENCH=engine,call` picks the parts): a gateway serving
//! base-q8_0, transcription sessions that name no language, each a new call whose first turn
//! is German of 2-7 s, or two or three short turns; the figure is the last
//! speech sample sent to the last turn's `input_audio_transcription.completed` received
//! (1.2 s of silence after each turn's speech), with the call's language detected while the
//! caller spoke (`speech`) or by the turn (`turn`).
//!
//! Run: `cargo bench -p switchboard-benches --bench language` with `make test-models` done;
//! `LANGUAGE_BENCH_MODELS=base-q8_0,base` picks the models. On a GPU machine the cuda
//! bundle runs it as `run-gpu.sh language-bench`, with the clips `build-cuda.sh` rendered
//! (`STT_BENCH_CLIPS`).

use std::time::{Duration, Instant};

use serde_json::json;

use switchboard_benches::{
    STT_UTTERANCES, env_list, models_dir, percentiles, speech_clip, stt_machine,
};
use switchboard_e2e::gateway::{Gateway, metric};
use switchboard_e2e::realtime_client::RealtimeClient;
use switchboard_e2e::scripted_llm::{Script, ScriptedLlm};
use switchboard_e2e::speech::{say_in, silence};
use switchboard_models::audio::MonoAudio;
use switchboard_models::provision::catalog::whisper_model;
use switchboard_models::stt::{
    DETECT_LANGUAGE, LearntLanguage, SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine,
};

const RUNS: usize = 5;
const GERMAN: &str = "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.";
/// The German clip's label, and its file name in a clips directory (`de5s.wav`).
const GERMAN_LABEL: &str = "de 5 s";

fn main() {
    let parts = env_list("LANGUAGE_BENCH", "engine,call");
    println!("{}\n", stt_machine());
    if parts.iter().any(|p| p == "engine") {
        engine();
    }
    if parts.iter().any(|p| p == "call") {
        calls();
    }
}

/// The models' cost of detection, clip by clip.
fn engine() {
    let models = env_list("LANGUAGE_BENCH_MODELS", "base-q8_0,base");
    let mut clips: Vec<(String, &str, MonoAudio)> = STT_UTTERANCES
        .iter()
        .map(|(label, text)| {
            let audio = speech_clip(label, "en-us", text);
            (format!("English {label}"), "en", audio)
        })
        .collect();
    clips.push((
        "German 5 s".into(),
        "de",
        speech_clip(GERMAN_LABEL, "de", GERMAN),
    ));

    println!(
        "| model | clip | audio | language named: p50 | detected: p50 | detection costs | detected | learnt, checked: p50 | another learnt: p50 | heard as |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for model in &models {
        let engine = WhisperEngine::load(WhisperConfig::new(whisper_model(&models_dir(), model)))
            .expect("model (run `make test-models`)");
        assert!(engine.multilingual(), "{model} knows only English");
        for (label, code, audio) in &clips {
            let run = |language: &str, learnt: Option<&'static str>| {
                // A fresh call's language each time: a switch changes it.
                let opts = || TranscribeOptions {
                    language: Some(language.to_owned()),
                    learnt: learnt.map(|l| LearntLanguage::known(2.0, l)),
                    ..Default::default()
                };
                // One warm-up, not counted.
                let mut heard = engine
                    .transcribe(audio.samples.clone(), opts())
                    .wait()
                    .expect("transcription");
                let mut times = Vec::new();
                for _ in 0..RUNS {
                    let started = Instant::now();
                    heard = engine
                        .transcribe(audio.samples.clone(), opts())
                        .wait()
                        .expect("transcription");
                    times.push(started.elapsed());
                }
                (percentiles(&mut times).0, heard.language)
            };
            let (named, _) = run(code, None);
            let (detected, language) = run(DETECT_LANGUAGE, None);
            let (kept, _) = run(DETECT_LANGUAGE, Some(code));
            let other = if *code == "en" { "de" } else { "en" };
            let (switched, heard_as) = run(DETECT_LANGUAGE, Some(other));
            println!(
                "| {model} | {label} | {:.2} s | {named:.0} ms | {detected:.0} ms | {:.0} ms | {language} | {kept:.0} ms | {other}: {switched:.0} ms | {heard_as} |",
                audio.duration_secs(),
                detected - named
            );
        }
    }
}

/// German calls: first turns by length, then short turns, two and three.
const CALLS: [&[&str]; 5] = [
    &[SHORT],
    &["Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren."],
    &[
        "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren. Wir kommen heute \
       Abend um acht Uhr mit dem Auto.",
    ],
    &[SHORT, "Wir kommen zu zweit."],
    &[SHORT, "Wir kommen zu zweit.", "Heute Abend um acht."],
];
const SHORT: &str = "Ich hätte gern einen Tisch.";
const CALL_RATE: u32 = 24_000;
const CALL_RUNS: usize = 3;

/// Each call a new one, in a session that names no language: its last turn's end of speech
/// to its transcript.
fn calls() {
    let llm = ScriptedLlm::start(Script::default());
    let gw = Gateway::start(&[llm.base_url()], &[("SWITCHBOARD_STT_MODEL", "base-q8_0")]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "\n| turns (German) | speech | last turn's end of speech → transcript: p50 / max | detected while speaking / by the turn |"
    );
    println!("|---|---|---|---|");
    for turns in CALLS {
        let speech: Vec<Vec<i16>> = turns.iter().map(|t| say_in("de", t, CALL_RATE)).collect();
        let before = detections(&gw);
        let mut times = Vec::new();
        for _ in 0..CALL_RUNS {
            times.push(runtime.block_on(last_turn(&gw, &speech)));
        }
        let after = detections(&gw);
        let max = times.iter().max().copied().unwrap_or_default();
        let (p50, _) = percentiles(&mut times);
        let words: Vec<String> = turns
            .iter()
            .map(|t| format!("{} words", t.split_whitespace().count()))
            .collect();
        let secs: Vec<String> = speech
            .iter()
            .map(|s| format!("{:.1} s", s.len() as f64 / CALL_RATE as f64))
            .collect();
        println!(
            "| {} | {} | {p50:.0} / {:.0} ms | {} / {} |",
            words.join(", then "),
            secs.join(" + "),
            max.as_secs_f64() * 1e3,
            after.0 - before.0,
            after.1 - before.1,
        );
    }
}

/// One new call hearing each of `turns` then silence, each turn's transcript awaited: the
/// last speech sample sent to the last transcript received.
async fn last_turn(gw: &Gateway, turns: &[Vec<i16>]) -> Duration {
    let long = Duration::from_secs(60);
    let mut c = RealtimeClient::connect(&gw.ws_url())
        .await
        .expect("connect");
    c.send(json!({"type": "session.update", "session": {"type": "transcription"}}))
        .await
        .expect("session.update");
    c.wait_for("session.updated", long).await.expect("updated");
    let mut took = Duration::ZERO;
    for speech in turns {
        c.skip_seen();
        c.stream_audio(speech, CALL_RATE).await.expect("speech");
        let spoken = tokio::time::Instant::now();
        c.stream_audio(&silence(1200, CALL_RATE), CALL_RATE)
            .await
            .expect("silence");
        let done = c
            .wait_for(
                "conversation.item.input_audio_transcription.completed",
                long,
            )
            .await
            .expect("a transcript");
        took = done.at.saturating_duration_since(spoken);
    }
    c.close().await;
    took
}

/// Calls that learnt German (`speech`, `turn`) so far.
fn detections(gw: &Gateway) -> (u64, u64) {
    let m = gw.metrics();
    let count = |from: &str| {
        let name =
            format!(r#"switchboard_languages_detected_total{{from="{from}",language="de"}}"#);
        metric(&m, &name) as u64
    };
    (count("speech"), count("turn"))
}

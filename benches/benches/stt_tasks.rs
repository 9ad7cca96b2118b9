//! What an upload's options cost: transcription as it is, with word timestamps
//! (`timestamp_granularities[]=word`), and translation into English (`/v1/audio/translations`),
//! on the engine the gateway serves uploads with (whole clips here: the 3 s and 10 s
//! utterances of `stt.rs`, English for tiny.en and base; base also translates their German).
//! p50/p95 of `RUNS` runs after one warm-up; the language is named, so no detection is timed.
//!
//! Run: `cargo bench -p switchboard-benches --bench stt_tasks` with `make test-models` done.
//! `STT_BENCH_MODELS` (default `tiny.en-q8_0,base-q8_0`) picks the models.

use std::time::Instant;

use switchboard_benches::{
    env_list, latency_row, latency_table, models_dir, speech_clip, stt_machine,
};
use switchboard_models::provision::catalog::whisper_model;
use switchboard_models::stt::{SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine};

const RUNS: usize = 7;

/// The German the translation rows speak: about 3 s and 10 s of espeak-ng.
const GERMAN: [(&str, &str); 2] = [
    (
        "3 s",
        "Ich möchte heute Abend um sieben einen Tisch für vier Personen.",
    ),
    (
        "10 s",
        "Ich möchte heute Abend um sieben einen Tisch für vier Personen reservieren, am liebsten \
         am Fenster, und wir bringen einen Kinderstuhl mit, weil unsere Tochter noch klein ist.",
    ),
];

fn timed(
    engine: &WhisperEngine,
    audio: &[f32],
    opts: &TranscribeOptions,
) -> Vec<std::time::Duration> {
    let run = || {
        let started = Instant::now();
        engine
            .transcribe(audio.to_vec(), opts.clone())
            .wait()
            .expect("transcription");
        started.elapsed()
    };
    run();
    (0..RUNS).map(|_| run()).collect()
}

fn main() {
    let models = env_list("STT_BENCH_MODELS", "tiny.en-q8_0,base-q8_0");
    println!("{}\n", stt_machine());
    let english: Vec<_> = switchboard_benches::STT_UTTERANCES[1..]
        .iter()
        .map(|(label, text)| (*label, speech_clip(label, "en-us", text)))
        .collect();
    let german: Vec<_> = GERMAN
        .iter()
        .map(|(label, text)| (*label, speech_clip(&format!("de {label}"), "de", text)))
        .collect();
    latency_table("model, task, utterance");
    for model in &models {
        let engine = WhisperEngine::load(WhisperConfig::new(whisper_model(&models_dir(), model)))
            .expect("whisper");
        let english_told = TranscribeOptions {
            language: engine.multilingual().then(|| "en".to_owned()),
            ..Default::default()
        };
        for (label, clip) in &english {
            let mut plain = timed(&engine, &clip.samples, &english_told);
            latency_row(&format!("{model}, transcribe, {label}"), &mut plain, 0);
            let words = TranscribeOptions {
                word_times: true,
                ..english_told.clone()
            };
            let mut words = timed(&engine, &clip.samples, &words);
            latency_row(
                &format!("{model}, transcribe with word times, {label}"),
                &mut words,
                0,
            );
        }
        if !engine.multilingual() {
            continue;
        }
        for (label, clip) in &german {
            let told = TranscribeOptions {
                language: Some("de".into()),
                ..Default::default()
            };
            let mut transcribed = timed(&engine, &clip.samples, &told);
            latency_row(
                &format!("{model}, transcribe German, {label}"),
                &mut transcribed,
                0,
            );
            let translate = TranscribeOptions {
                translate: true,
                ..told
            };
            let mut translated = timed(&engine, &clip.samples, &translate);
            latency_row(
                &format!("{model}, translate German, {label}"),
                &mut translated,
                0,
            );
        }
    }
}

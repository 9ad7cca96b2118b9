//! What language detection costs: each multilingual Whisper model transcribes the same clips
//! with the language named and with it detected (`DETECT_LANGUAGE`: one more encoder pass
//! over Whisper's full 30 s window, on the worker's detection state). English clips are the
//! STT bench's 1, 3 and 10 s utterances; the German one is a 5 s sentence. Prints Markdown
//! rows for BENCHMARKS.md, with the language detected.
//!
//! Run: `cargo bench -p switchboard-benches --bench language` with `make test-models` done;
//! `LANGUAGE_BENCH_MODELS=base-q8_0,base` picks the models.

use std::time::Instant;

use switchboard_benches::{STT_UTTERANCES, espeak_16k, models_dir, percentiles};
use switchboard_models::audio::MonoAudio;
use switchboard_models::provision::catalog::whisper_model;
use switchboard_models::stt::{
    DETECT_LANGUAGE, SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine,
};

const RUNS: usize = 5;
const GERMAN: &str = "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.";

fn main() {
    let models = std::env::var("LANGUAGE_BENCH_MODELS").unwrap_or_else(|_| "base-q8_0,base".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: CPU, {cores} cores\n");
    let mut clips: Vec<(String, &str, MonoAudio)> = STT_UTTERANCES
        .iter()
        .map(|(label, text)| (format!("English {label}"), "en", espeak_16k("en-us", text)))
        .collect();
    clips.push(("German 5 s".into(), "de", espeak_16k("de", GERMAN)));

    println!(
        "| model | clip | audio | language named: p50 | detected: p50 | detection costs | detected |"
    );
    println!("|---|---|---|---|---|---|---|");
    for model in models.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let engine = WhisperEngine::load(WhisperConfig::new(whisper_model(&models_dir(), model)))
            .expect("model (run `make test-models`)");
        assert!(engine.multilingual(), "{model} knows only English");
        for (label, code, audio) in &clips {
            let run = |language: &str| {
                let opts = || TranscribeOptions {
                    language: Some(language.to_owned()),
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
            let (named, _) = run(code);
            let (detected, language) = run(DETECT_LANGUAGE);
            println!(
                "| {model} | {label} | {:.2} s | {named:.0} ms | {detected:.0} ms | {:.0} ms | {language} |",
                audio.duration_secs(),
                detected - named
            );
        }
    }
}

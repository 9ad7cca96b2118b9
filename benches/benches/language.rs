//! What language detection costs: each multilingual Whisper model transcribes the same clips
//! with the language named and with it detected (`DETECT_LANGUAGE`: one more encoder pass
//! over Whisper's full 30 s window, on the worker's detection state). English clips are the
//! STT bench's 1, 3 and 10 s utterances; the German one is a 5 s sentence. Prints Markdown
//! rows for BENCHMARKS.md, with the language detected.
//!
//! Run: `cargo bench -p switchboard-benches --bench language` with `make test-models` done;
//! `LANGUAGE_BENCH_MODELS=base-q8_0,base` picks the models. On a GPU machine the cuda
//! bundle runs it as `run-gpu.sh language-bench`, with the clips `build-cuda.sh` rendered
//! (`STT_BENCH_CLIPS`).

use std::time::Instant;

use switchboard_benches::{
    STT_UTTERANCES, env_list, models_dir, percentiles, speech_clip, stt_machine,
};
use switchboard_models::audio::MonoAudio;
use switchboard_models::provision::catalog::whisper_model;
use switchboard_models::stt::{
    DETECT_LANGUAGE, SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine,
};

const RUNS: usize = 5;
const GERMAN: &str = "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.";
/// The German clip's label, and its file name in a clips directory (`de5s.wav`).
const GERMAN_LABEL: &str = "de 5 s";

fn main() {
    let models = env_list("LANGUAGE_BENCH_MODELS", "base-q8_0,base");
    println!("{}\n", stt_machine());
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
        "| model | clip | audio | language named: p50 | detected: p50 | detection costs | detected |"
    );
    println!("|---|---|---|---|---|---|---|");
    for model in &models {
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

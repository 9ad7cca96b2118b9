//! whisper.cpp when its threads do not have the cores to themselves: the 3 s utterance
//! transcribed by one engine alone, then by two engines at once, each with as many threads
//! as the machine has cores (two gateways on one machine, or one gateway's Whisper beside
//! Piper, Smart Turn or the embedded LLM). Two runs at once should take about twice as long
//! as one. ggml's own thread pool waits at each of a graph's barriers by spinning, so a
//! thread whose partner has been descheduled burns its slice instead of yielding it; built
//! with the `openmp` feature (the default since 2026-12-06), whisper.cpp's threads meet at
//! libgomp's barriers instead, which sleep after a short spin.
//!
//! Run: `cargo bench -p switchboard-benches --bench stt_contention [--no-default-features]`
//! (the second: ggml's pool)
//! (`STT_CONTENTION_MODEL`, default tiny.en-q8_0; `STT_CONTENTION_RUNS`, default 10).

use std::time::Instant;

use switchboard_benches::{STT_UTTERANCES, env_number, models_dir, percentiles, speech_clip};
use switchboard_models::provision::catalog::{WHISPER_DEFAULT, whisper_model};
use switchboard_models::stt::{SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine};

fn main() {
    let dir = models_dir();
    let model = std::env::var("STT_CONTENTION_MODEL").unwrap_or_else(|_| WHISPER_DEFAULT.into());
    let runs: usize = env_number("STT_CONTENTION_RUNS", 10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engines: Vec<WhisperEngine> = (0..2)
        .map(|_| {
            // Each engine takes every core, as a gateway's single worker does.
            let cfg = WhisperConfig::new(whisper_model(&dir, &model)).sharing_cores(1, 1);
            WhisperEngine::load(cfg).expect("whisper")
        })
        .collect();
    let (label, text) = STT_UTTERANCES[1];
    let clip = speech_clip(label, "en-us", text).samples;
    let start = |e: &WhisperEngine| e.transcribe(clip.clone(), TranscribeOptions::default());
    for e in &engines {
        start(e).wait().expect("warm-up");
    }
    let (mut alone, mut together) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        start(&engines[0]).wait().expect("transcription");
        alone.push(started.elapsed());
        let started = Instant::now();
        let both = [start(&engines[0]), start(&engines[1])];
        for job in both {
            job.wait().expect("transcription");
        }
        together.push(started.elapsed());
    }
    let barriers = if cfg!(feature = "openmp") {
        "OpenMP (libgomp)"
    } else {
        "ggml's spinning"
    };
    let (a50, a95) = percentiles(&mut alone);
    let (t50, t95) = percentiles(&mut together);
    println!(
        "| {model} | {cores} cores, {cores} threads per engine | {barriers} | {a50:.0} / {a95:.0} ms | {t50:.0} / {t95:.0} ms | {:.1}× |",
        t50 / a50
    );
}

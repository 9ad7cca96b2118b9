//! Speech-to-text by model and device: latency of 1, 3 and 10 s utterances for each Whisper
//! model, and how many live calls one machine carries with p95 STT latency at most 300 ms.
//! The same program measures the CPU build and the `cuda` build (on a GPU machine); the header
//! names the device. Prints Markdown rows for BENCHMARKS.md.
//!
//! Load model: each call ("stream") speaks a 3 s utterance every 6 s (3 s of caller speech,
//! 3 s of agent reply), the start jittered by up to ±1 s, for `STT_BENCH_SECS` (20) seconds.
//! Latency runs from the end of the utterance (when the VAD hands it over) to the transcript,
//! so it includes waiting for a free whisper state.
//!
//! Uploads beside live calls: the same calls on the first model, one state, while two
//! uploaders keep transcribing the 10 s clip (14 s), queued as `Batch` and cut into pieces at
//! pauses (what the gateway does with uploads and voice notes), as `Batch` but run whole, and
//! as `Live` (first come, first served, as before the urgency queue).
//!
//! Run: `make bench`, or `cargo bench -p switchboard-benches --bench stt` with
//! `make test-models` done. `STT_BENCH_MODELS=tiny.en-q8_0,tiny.en,base-q8_0,base`,
//! `STT_BENCH_POOLS=1x1,2x1,1x2`
//! (states per context × contexts), `STT_BENCH_LOAD_MODELS` (the models the load table runs;
//! all by default), `STT_BENCH_MAX_STREAMS` (64) and `STT_BENCH_UPLOADS=0` (skip the last
//! table) narrow or widen it. The load table doubles the streams until p95 passes 300 ms, then
//! bisects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_benches::{
    STT_UTTERANCES, env_list, env_number, models_dir, most_streams_within_budget, percentiles,
    speech_clip, stt_machine, word_errors,
};
use switchboard_models::audio::MonoAudio;
use switchboard_models::provision::catalog::whisper_model;
use switchboard_models::stt::{
    DEFAULT_PIECE_SECS, Priority, SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine,
    device,
};

const RUNS: usize = 7;
const P95_BUDGET_MS: f64 = 300.0;
const CYCLE: Duration = Duration::from_secs(6);

/// `contexts` engines (each a copy of the model) with `states` whisper states each, the cores
/// split evenly between all states. With a GPU the states share it and keep 1 CPU thread.
fn pool(model: &str, states: usize, contexts: usize) -> Vec<WhisperEngine> {
    pool_with(model, states, contexts, DEFAULT_PIECE_SECS)
}

/// [`pool`], with uploads cut into pieces of at most `piece_secs` (0: whole).
fn pool_with(model: &str, states: usize, contexts: usize, piece_secs: f32) -> Vec<WhisperEngine> {
    let gpu = !device::gpus().is_empty();
    (0..contexts)
        .map(|_| {
            let mut cfg = WhisperConfig::new(whisper_model(&models_dir(), model))
                .sharing_cores(states, states * contexts);
            if gpu {
                cfg.threads = 1;
            }
            cfg.queue = 256;
            cfg.piece_secs = piece_secs;
            WhisperEngine::load(cfg).expect("whisper")
        })
        .collect()
}

fn main() {
    let models = env_list("STT_BENCH_MODELS", "tiny.en-q8_0,tiny.en,base-q8_0,base");
    let pools = env_list("STT_BENCH_POOLS", "1x1,2x1,1x2");
    let load_models = env_list("STT_BENCH_LOAD_MODELS", &models.join(","));
    let uploads_table = std::env::var("STT_BENCH_UPLOADS").map_or(true, |v| v != "0");
    let secs: u64 = env_number("STT_BENCH_SECS", 20);
    let max_streams: usize = env_number("STT_BENCH_MAX_STREAMS", 64);
    // Where the doubling starts: a GPU carries hundreds of streams.
    let first_streams: usize = env_number("STT_BENCH_FIRST_STREAMS", 1);
    println!("{}\n", stt_machine());
    let clips: Vec<(&str, &str, MonoAudio)> = STT_UTTERANCES
        .iter()
        .map(|(label, text)| (*label, *text, speech_clip(label, "en-us", text)))
        .collect();

    println!("| model | device | utterance | audio | p50 | p95 | WER |");
    println!("|---|---|---|---|---|---|---|");
    for model in &models {
        let engine = pool(model, 1, 1).remove(0);
        for (label, text, audio) in &clips {
            let mut times = Vec::new();
            let mut errors = (0, 0);
            // One warm-up, not counted.
            engine
                .transcribe(audio.samples.clone(), TranscribeOptions::default())
                .wait()
                .expect("transcription");
            for _ in 0..RUNS {
                let started = Instant::now();
                let t = engine
                    .transcribe(audio.samples.clone(), TranscribeOptions::default())
                    .wait()
                    .expect("transcription");
                times.push(started.elapsed());
                let (e, n) = word_errors(text, &t.text);
                errors = (errors.0 + e, errors.1 + n);
            }
            let (p50, p95) = percentiles(&mut times);
            println!(
                "| {model} | {} | {label} | {:.2} s | {p50:.0} ms | {p95:.0} ms | {:.1}% |",
                engine.backend(),
                audio.duration_secs(),
                errors.0 as f64 * 100.0 / errors.1 as f64
            );
        }
    }

    let three_secs = Arc::new(clips[1].2.samples.clone());
    println!();
    println!(
        "| model | device | states per context × contexts | streams | p50 | p95 | utterances |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut best = Vec::new();
    for model in &load_models {
        for spec in &pools {
            let (states, contexts) = parse_pool(spec);
            let engines: Arc<Vec<WhisperEngine>> = Arc::new(pool(model, states, contexts));
            warm_up(&engines, &three_secs);
            let backend = engines[0].backend();
            let run = |streams: usize| {
                let (p50, p95, n) = load(
                    &engines,
                    &three_secs,
                    streams,
                    Duration::from_secs(secs),
                    None,
                );
                println!(
                    "| {model} | {backend} | {states} × {contexts} | {streams} | {p50:.0} ms | {p95:.0} ms | {n} |"
                );
                p95 <= P95_BUDGET_MS
            };
            let carried = most_streams_within_budget(first_streams, max_streams, run);
            best.push(format!(
                "{model}, {backend}, {states} × {contexts}: {carried} streams"
            ));
        }
    }
    println!("\nstreams carried at p95 <= {P95_BUDGET_MS:.0} ms:");
    for line in best {
        println!("- {line}");
    }

    if !uploads_table {
        return;
    }
    let (model, calls) = (&models[0], 2);
    let engines = Arc::new(pool(model, 1, 1));
    let backend = engines[0].backend();
    let upload = Arc::new(clips[2].2.samples.clone());
    println!("\n| model | device | uploads beside the calls | calls | p50 | p95 | utterances |");
    println!("|---|---|---|---|---|---|---|");
    // The same engine with uploads run whole, as before they were cut into pieces.
    let whole = Arc::new(vec![pool_with(model, 1, 1, 0.0).remove(0)]);
    for (label, engines, uploads) in [
        ("none", &engines, None),
        (
            "2, queued as Batch, in pieces (the gateway's)",
            &engines,
            Some(Priority::Batch),
        ),
        ("2, queued as Batch, whole", &whole, Some(Priority::Batch)),
        (
            "2, queued as Live (first come, first served)",
            &whole,
            Some(Priority::Live),
        ),
    ] {
        let uploads = uploads.map(|p| (Arc::clone(&upload), p));
        let (p50, p95, n) = load(
            engines,
            &three_secs,
            calls,
            Duration::from_secs(secs),
            uploads,
        );
        println!("| {model} | {backend} | {label} | {calls} | {p50:.0} ms | {p95:.0} ms | {n} |");
    }
}

/// One utterance on every whisper state at once, so the first measured streams pay for no
/// first-use cost (cuBLAS handles, CUDA buffers, pages of the model).
fn warm_up(engines: &[WhisperEngine], clip: &[f32]) {
    let pending: Vec<_> = engines
        .iter()
        .flat_map(|e| (0..e.workers()).map(move |_| e))
        .map(|e| e.transcribe(clip.to_vec(), TranscribeOptions::default()))
        .collect();
    for p in pending {
        p.wait().expect("warm-up transcription");
    }
}

fn parse_pool(spec: &str) -> (usize, usize) {
    let (s, c) = spec.split_once('x').unwrap_or((spec, "1"));
    (
        s.parse().expect("states in STT_BENCH_POOLS"),
        c.parse().expect("contexts in STT_BENCH_POOLS"),
    )
}

/// Run `streams` simulated calls against the engines (each call pinned to one engine, round
/// robin), beside two uploaders transcribing `uploads` back to back at its priority, and
/// return the calls' p50 and p95 latency in ms, and the utterances transcribed.
fn load(
    engines: &Arc<Vec<WhisperEngine>>,
    clip: &Arc<Vec<f32>>,
    streams: usize,
    duration: Duration,
    uploads: Option<(Arc<Vec<f32>>, Priority)>,
) -> (f64, f64, usize) {
    let started = Instant::now() + Duration::from_millis(200);
    let uploaders: Vec<_> = uploads
        .into_iter()
        .flat_map(|(audio, priority)| [(Arc::clone(&audio), priority), (audio, priority)])
        .map(|(audio, priority)| {
            let engines = Arc::clone(engines);
            std::thread::spawn(move || {
                while Instant::now() < started + duration {
                    engines[0]
                        .transcribe(audio.to_vec(), TranscribeOptions::at(priority))
                        .wait()
                        .expect("upload transcription");
                }
            })
        })
        .collect();
    let handles: Vec<_> = (0..streams)
        .map(|i| {
            let engines = Arc::clone(engines);
            let clip = Arc::clone(clip);
            std::thread::spawn(move || {
                let engine = &engines[i % engines.len()];
                let mut rng =
                    0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                // Calls start spread over one cycle.
                let mut due = started + CYCLE.mul_f64(i as f64 / streams as f64);
                let mut latencies = Vec::new();
                while due < started + duration {
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    engine
                        .transcribe(clip.to_vec(), TranscribeOptions::default())
                        .wait()
                        .expect("transcription");
                    latencies.push(due.elapsed());
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let jitter = (rng % 2001) as f64 / 1000.0 - 1.0;
                    due += Duration::from_secs_f64(CYCLE.as_secs_f64() + jitter);
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("stream thread"))
        .collect();
    for u in uploaders {
        u.join().expect("uploader thread");
    }
    let n = all.len();
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let (p50, p95) = percentiles(&mut all);
    (p50, p95, n)
}

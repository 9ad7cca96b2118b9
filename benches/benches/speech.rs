//! Speech engine benchmarks: STT latency by utterance length and encoder window, TTS time to
//! first audio and real-time factor, VAD cost per frame, noise suppression's cost. Prints
//! Markdown rows for BENCHMARKS.md.
//!
//! Run: `make bench` (or `cargo bench -p switchboard-benches` with models fetched);
//! `SWITCHBOARD_BENCH=denoise` runs only the noise suppression rows, `SWITCHBOARD_BENCH=tts`
//! only the text-to-speech ones.

use std::time::{Duration, Instant};

use switchboard_benches::{STT_UTTERANCES, models_dir, percentiles, piper_speech, word_errors};
use switchboard_models::audio::rates;
use switchboard_models::provision::catalog::{
    PIPER_JOE, SILERO_VAD, WHISPER_DEFAULT, whisper_model,
};
use switchboard_models::stt::{
    AudioCtx, SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine,
};
use switchboard_models::tts::{PiperConfig, PiperEngine, Priority, SpeakOptions, TextToSpeech};
use switchboard_models::vad::{FRAME_SAMPLES, SileroVad, VadStream, VoiceActivity};

const RUNS: usize = 7;

fn main() {
    // SAFETY: before any other thread exists.
    unsafe { switchboard_models::tts::export_espeak_data_dir() };
    let dir = models_dir();
    let tts = PiperEngine::load(PiperConfig::new(&dir, dir.join(PIPER_JOE))).expect("piper");
    let stt = WhisperEngine::load(WhisperConfig::new(whisper_model(&dir, WHISPER_DEFAULT)))
        .expect("whisper");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} cores; whisper threads {cores}; piper intra-op threads {cores}\n");
    match std::env::var("SWITCHBOARD_BENCH").as_deref() {
        Ok("denoise") => return bench_denoise(&tts),
        Ok("tts") => return bench_tts(&tts),
        _ => {}
    }
    bench_tts(&tts);
    bench_stt(&stt, &tts);
    bench_stt_stream(&stt, &tts);
    bench_vad(&dir, &tts);
    bench_denoise(&tts);
}

/// Time to the first chunk of `reply`, spoken live `RUNS` times, `pause` apart.
fn first_chunk_times(tts: &PiperEngine, reply: &str, pause: Duration) -> Vec<Duration> {
    let mut first = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut s = tts.synthesize(reply, SpeakOptions::default());
        s.next_blocking().expect("a chunk").expect("synthesis");
        first.push(started.elapsed());
        while s.next_blocking().is_some() {}
        std::thread::sleep(pause);
    }
    first
}

fn bench_tts(tts: &PiperEngine) {
    let reply = "Sure, your table for four is booked for seven tonight. Is there anything else I can do for you?";
    piper_speech(tts, reply); // warm-up
    let mut first = first_chunk_times(tts, reply, Duration::ZERO);
    let (p50, p95) = percentiles(&mut first);
    println!(
        "| TTS time to first audio chunk, two-sentence reply (warm) | {p50:.0} ms | {p95:.0} ms |"
    );

    let paragraph = "The museum opens at nine in the morning and closes at five. Tickets can be bought at the \
                     door or online, and children under twelve go in for free. Guided tours leave every hour \
                     from the main hall, and the cafe on the top floor serves lunch until three.";
    let mut rtfs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let audio = piper_speech(tts, paragraph);
        rtfs.push(audio.duration_secs() / started.elapsed().as_secs_f64());
    }
    rtfs.sort_by(f64::total_cmp);
    println!(
        "| TTS real-time factor (audio seconds per compute second), 15 s paragraph | {:.1}x (median of 3) | |",
        rtfs[1]
    );

    // The same while `/v1/audio/speech` requests of ~4,000 characters keep the engine busy
    // (read as fast as they come, queued as Batch like the gateway's).
    let stop = std::sync::atomic::AtomicBool::new(false);
    let long = "The museum opens at nine in the morning and closes at five. ".repeat(66);
    let mut first = std::thread::scope(|scope| {
        scope.spawn(|| {
            let batch = SpeakOptions {
                priority: Priority::Batch,
                ..SpeakOptions::default()
            };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut s = tts.synthesize(&long, batch);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if s.next_blocking().is_none() {
                        break;
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let first = first_chunk_times(tts, reply, Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        first
    });
    let (p50, p95) = percentiles(&mut first);
    println!(
        "| TTS time to first audio chunk, same reply, while 4,000-character speech requests stream | {p50:.0} ms | {p95:.0} ms |"
    );
}

fn bench_stt(stt: &WhisperEngine, tts: &PiperEngine) {
    println!();
    println!("| utterance | audio | audio_ctx | p50 | p95 | WER |");
    println!("|---|---|---|---|---|---|");
    for (label, text) in STT_UTTERANCES {
        let audio = piper_speech(tts, text)
            .to_rate(rates::SPEECH_MODELS)
            .expect("resample");
        for (ctx_label, ctx) in [("auto", AudioCtx::Auto), ("full (1500)", AudioCtx::Full)] {
            let mut times = Vec::new();
            let mut errors = (0, 0);
            let mut used = 0;
            for _ in 0..RUNS {
                let started = Instant::now();
                let t = stt
                    .transcribe(
                        audio.samples.clone(),
                        TranscribeOptions {
                            audio_ctx: ctx,
                            ..Default::default()
                        },
                    )
                    .wait()
                    .expect("transcription");
                times.push(started.elapsed());
                let (e, n) = word_errors(text, &t.text);
                errors = (errors.0 + e, errors.1 + n);
                used = t.audio_ctx;
            }
            let (p50, p95) = percentiles(&mut times);
            let used = if used == 0 {
                "1500".to_owned()
            } else {
                used.to_string()
            };
            println!(
                "| {label} | {:.2} s | {ctx_label}: {used} | {p50:.0} ms | {p95:.0} ms | {:.1}% |",
                audio.duration_secs(),
                errors.0 as f64 * 100.0 / errors.1 as f64
            );
        }
    }
}

/// A 60 s file transcribed with a segment sink: when its first text is out (the first 30 s
/// window decoded), against when the whole transcript is.
fn bench_stt_stream(stt: &WhisperEngine, tts: &PiperEngine) {
    let sentence = piper_speech(
        tts,
        "The train to Edinburgh leaves from platform nine at half past four.",
    )
    .to_rate(rates::SPEECH_MODELS)
    .expect("resample");
    let mut audio = Vec::new();
    while audio.len() < 60 * 16_000 {
        audio.extend_from_slice(&sentence.samples);
        audio.extend(vec![0.0; 8_000]);
    }
    let (mut first, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (sink, mut segments) = tokio::sync::mpsc::unbounded_channel();
        let started = Instant::now();
        let job = stt.transcribe(
            audio.clone(),
            TranscribeOptions {
                segments: Some(sink),
                ..Default::default()
            },
        );
        segments.blocking_recv().expect("a segment");
        first.push(started.elapsed());
        job.wait().expect("transcription");
        whole.push(started.elapsed());
    }
    let (first_p50, _) = percentiles(&mut first);
    let (whole_p50, _) = percentiles(&mut whole);
    println!(
        "\n| {:.0} s file, streamed (median of 3) | first segment {first_p50:.0} ms | whole transcript {whole_p50:.0} ms |",
        audio.len() as f64 / 16_000.0
    );
}

fn bench_vad(dir: &std::path::Path, tts: &PiperEngine) {
    let vad = SileroVad::load(dir, &dir.join(SILERO_VAD), 1).expect("silero");
    let mut audio = Vec::new();
    while audio.len() < 30 * 16_000 {
        audio.extend(
            piper_speech(tts, "Testing the voice activity detector with some speech.")
                .to_rate(16_000)
                .expect("resample")
                .samples,
        );
        audio.extend(vec![0.0; 8_000]);
    }
    let mut stream = vad.stream();
    let mut per_frame = Vec::new();
    for frame in audio.chunks_exact(FRAME_SAMPLES) {
        let started = Instant::now();
        stream.speech_probability(frame).expect("vad");
        per_frame.push(started.elapsed());
    }
    let total: Duration = per_frame.iter().sum();
    let (p50, p95) = percentiles(&mut per_frame);
    println!();
    println!(
        "| VAD cost per 32 ms frame ({} frames) | p50 {p50:.3} ms, p95 {p95:.3} ms, mean {:.3} ms |",
        per_frame.len(),
        total.as_secs_f64() * 1000.0 / per_frame.len() as f64
    );
    println!(
        "| VAD per-stream state | {} bytes (the model's ~2.3 MB session is shared) |",
        VadStream::STATE_BYTES
    );
}

/// RNNoise on a caller's stream: 30 s of speech at the Realtime API's 24 kHz, pushed in the
/// 20 ms appends a client sends (upsampled to 48 kHz and denoised in 10 ms frames).
fn bench_denoise(tts: &PiperEngine) {
    use switchboard_models::audio::denoise::Denoiser;
    let mut audio = Vec::new();
    while audio.len() < 30 * rates::REALTIME as usize {
        audio.extend(
            piper_speech(tts, "Testing noise suppression on a caller's speech.")
                .to_rate(rates::REALTIME)
                .expect("resample")
                .samples,
        );
        audio.extend(vec![0.0; 12_000]);
    }
    let mut d = Denoiser::new(rates::REALTIME).expect("denoiser");
    let mut per_append = Vec::new();
    let append = rates::REALTIME as usize / 50;
    for chunk in audio.chunks_exact(append) {
        let started = Instant::now();
        d.push(chunk).expect("denoise");
        per_append.push(started.elapsed());
    }
    let total: Duration = per_append.iter().sum();
    let secs = (per_append.len() * append) as f64 / rates::REALTIME as f64;
    let (p50, p95) = percentiles(&mut per_append);
    println!();
    println!(
        "| noise suppression per 20 ms append, 24 kHz ({} appends) | p50 {p50:.3} ms, p95 {p95:.3} ms; real-time factor {:.4} (one core) |",
        per_append.len(),
        total.as_secs_f64() / secs
    );
}

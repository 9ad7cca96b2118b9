//! Silero VAD on a clip of speech and silence: segments within 100 ms of the true bounds.

mod common;

use common::{espeak, models_dir};
use switchboard_models::audio::rates;
use switchboard_models::provision::catalog::SILERO_VAD;
use switchboard_models::vad::{
    FRAME_SAMPLES, SegmenterConfig, SileroVad, SpeechSegmenter, VadError, VoiceActivity,
};

const RATE: usize = rates::SPEECH_MODELS as usize;

/// espeak-ng speech at 16 kHz with its leading and trailing near-silence cut off,
/// so the true speech bounds are the clip's own ends.
fn trimmed_speech(text: &str, voice: &str) -> Vec<f32> {
    let audio = espeak(text, voice, 160)
        .to_rate(rates::SPEECH_MODELS)
        .expect("resample")
        .samples;
    let first = audio.iter().position(|s| s.abs() > 0.02).expect("speech");
    let last = audio.iter().rposition(|s| s.abs() > 0.02).expect("speech");
    audio[first..=last].to_vec()
}

fn silence(secs: f32) -> Vec<f32> {
    vec![0.0; (secs * RATE as f32) as usize]
}

#[test]
fn segments_match_true_speech_bounds_within_100_ms() {
    let vad = SileroVad::load(&models_dir(), &models_dir().join(SILERO_VAD), 1).unwrap();
    let pieces = [
        silence(1.0),
        trimmed_speech("Good morning, I would like to book a table.", "en-us"),
        silence(1.2),
        trimmed_speech("For two people at seven tonight.", "en-gb"),
        silence(0.9),
        trimmed_speech("Thank you very much.", "en-us+f3"),
        silence(1.0),
    ];
    let mut truth = Vec::new();
    let mut clip = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        if i % 2 == 1 {
            let start = clip.len() * 1000 / RATE;
            truth.push((start as i64, ((clip.len() + p.len()) * 1000 / RATE) as i64));
        }
        clip.extend_from_slice(p);
    }
    // Light noise floor, as a real microphone has.
    let mut seed = 1u32;
    for s in &mut clip {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *s += ((seed >> 9) as f32 / (1u32 << 23) as f32 - 0.5) * 0.002;
    }

    let mut stream = vad.stream();
    let mut seg = SpeechSegmenter::new(SegmenterConfig {
        min_silence_ms: 400,
        ..SegmenterConfig::default()
    });
    let mut found = Vec::new();
    for frame in clip.chunks_exact(FRAME_SAMPLES) {
        let p = stream.speech_probability(frame).unwrap();
        found.extend(seg.push(p));
    }
    found.extend(seg.finish());
    let found: Vec<(i64, i64)> = found
        .iter()
        .map(|s| (s.start_ms as i64, s.end_ms as i64))
        .collect();
    println!("true: {truth:?}\nfound: {found:?}");
    assert_eq!(found.len(), truth.len(), "segments: {found:?} vs {truth:?}");
    for ((ts, te), (fs, fe)) in truth.iter().zip(&found) {
        assert!((ts - fs).abs() <= 100, "start {fs} vs true {ts}");
        assert!((te - fe).abs() <= 100, "end {fe} vs true {te}");
    }
}

#[test]
fn silence_scores_low_and_wrong_frame_sizes_are_refused() {
    let vad = SileroVad::load(&models_dir(), &models_dir().join(SILERO_VAD), 1).unwrap();
    let mut stream = vad.stream();
    for _ in 0..20 {
        assert!(stream.speech_probability(&[0.0; FRAME_SAMPLES]).unwrap() < 0.1);
    }
    assert!(matches!(
        stream.speech_probability(&[0.0; 100]),
        Err(VadError::FrameSize { .. })
    ));
}

#[test]
fn streams_sharing_one_session_keep_separate_state() {
    let vad = SileroVad::load(&models_dir(), &models_dir().join(SILERO_VAD), 1).unwrap();
    let speech = trimmed_speech("Hello there, how are you doing today?", "en-us");
    let (mut a, mut b) = (vad.stream(), vad.stream());
    let mut alone = vad.stream();
    // `a` hears speech interleaved with `b` hearing silence; `a` must score as if alone.
    for frame in speech.chunks_exact(FRAME_SAMPLES) {
        let pa = a.speech_probability(frame).unwrap();
        b.speech_probability(&[0.0; FRAME_SAMPLES]).unwrap();
        let p_alone = alone.speech_probability(frame).unwrap();
        assert!((pa - p_alone).abs() < 1e-5);
    }
}

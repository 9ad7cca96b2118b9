//! The end-of-turn model: Smart Turn v3.2 (Daily's, as Pipecat ships it), an ONNX
//! classifier on Whisper tiny's encoder that hears whether a speaker has finished their turn,
//! from the last 8 s of their voice: the words and how they were said (a falling voice, a
//! held vowel, a trailing "and..."). Trained on 23 languages.
//!
//! Input: the Whisper log-mel spectrogram (80 x 800) of the last 8 s at 16 kHz, the audio
//! left-padded with silence when shorter and normalized to zero mean and unit variance
//! first, as the model was trained. Output: the probability that the turn is complete.

use std::path::Path;
use std::sync::Arc;

use ort::value::Tensor;

use crate::audio::mel;
use crate::onnx::{self, OnnxError, SessionPool};

/// The audio the model hears: the last 8 s at 16 kHz.
pub const WINDOW_SAMPLES: usize = 8 * 16_000;
const N_MELS: usize = 80;
const FRAMES: usize = WINDOW_SAMPLES / mel::HOP;

#[derive(Debug, thiserror::Error)]
pub enum EndOfTurnError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("end-of-turn inference failed: {0}")]
    Inference(String),
}

/// The shared model: a few sessions, used by any number of calls.
#[derive(Debug)]
pub struct SmartTurn {
    sessions: SessionPool,
}

impl SmartTurn {
    /// Load `pool` sessions of the model at `model`, one intra-op thread each: an inference
    /// is ~40 ms of one core (BENCHMARKS.md "End of turn"), and calls are many.
    pub fn load(models_dir: &Path, model: &Path, pool: usize) -> Result<Arc<Self>, EndOfTurnError> {
        onnx::init(models_dir)?;
        Ok(Arc::new(Self {
            sessions: SessionPool::load(model, pool, 1)?,
        }))
    }

    /// The probability in [0, 1] that a speaker whose turn so far is `speech` (16 kHz, its
    /// end the moment they fell silent) has finished. Blocking: call from a worker thread.
    pub fn complete_probability(&self, speech: &[f32]) -> Result<f32, EndOfTurnError> {
        let features = features(speech);
        let fail = |e: ort::Error| EndOfTurnError::Inference(e.to_string());
        let input = Tensor::from_array(([1usize, N_MELS, FRAMES], features)).map_err(fail)?;
        let mut session = self.sessions.lock();
        let outputs = session
            .run(ort::inputs!["input_features" => input])
            .map_err(fail)?;
        let (_, p) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
        match p.first() {
            Some(&p) if p.is_finite() => Ok(p.clamp(0.0, 1.0)),
            _ => Err(EndOfTurnError::Inference("unexpected output".into())),
        }
    }
}

/// The model's input for `speech`: its last 8 s (left-padded with silence), normalized,
/// as 80 x 800 log-mel features.
pub fn features(speech: &[f32]) -> Vec<f32> {
    let tail = &speech[speech.len().saturating_sub(WINDOW_SAMPLES)..];
    let mut window = vec![0f32; WINDOW_SAMPLES - tail.len()];
    window.extend_from_slice(tail);
    let n = window.len() as f64;
    let mean = window.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = window
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    for x in &mut window {
        *x = ((*x as f64 - mean) * scale) as f32;
    }
    mel::log_mel(&window, N_MELS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 s of two tones: 440 Hz and 1.8 kHz (phases in f64, as numpy computes them).
    fn tones() -> Vec<f32> {
        use std::f64::consts::PI;
        (0..32_000)
            .map(|n| {
                let t = n as f64 / 16_000.0;
                (0.3 * (2.0 * PI * 440.0 * t).sin() + 0.1 * (2.0 * PI * 1_800.0 * t + 0.5).sin())
                    as f32
            })
            .collect()
    }

    #[test]
    fn features_match_the_reference_extractor() {
        // Values from the numpy reference (transformers' WhisperFeatureExtractor as Pipecat
        // feeds Smart Turn: chunk_length 8, do_normalize) on the same signal.
        let f = features(&tones());
        assert_eq!(f.len(), N_MELS * FRAMES);
        let at = |m: usize, t: usize| f[m * FRAMES + t];
        for (m, t, want) in [
            (0, 799, 0.858_654_7),
            (10, 700, 1.713_585_3),
            (40, 750, 1.278_788_3),
            (79, 799, -0.028_696_42),
            (70, 799, 0.033_136_88),
            (79, 600, -0.050_693_72),
            (5, 0, -0.196_948_98),
            (3, 650, -0.196_948_98),
        ] {
            assert!(
                (at(m, t) - want).abs() < 2e-3,
                "({m}, {t}): {} vs {want}",
                at(m, t)
            );
        }
        let mean = f.iter().sum::<f32>() / f.len() as f32;
        assert!((mean - -0.155_813_44).abs() < 1e-3, "{mean}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Any audio, silence and clipping included, gives finite features of one shape.
        #[test]
        fn any_audio_gives_finite_features(
            speech in proptest::collection::vec(-1.0f32..=1.0, 0..40_000),
            gain in proptest::sample::select(vec![0.0f32, 1e-6, 1.0, 1e3]),
        ) {
            let audio: Vec<f32> = speech.iter().map(|s| s * gain).collect();
            let f = features(&audio);
            proptest::prop_assert_eq!(f.len(), N_MELS * FRAMES);
            proptest::prop_assert!(f.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn only_the_last_eight_seconds_are_heard() {
        let mut long = vec![0.5f32; 20_000];
        long.extend(std::iter::repeat_n(0.0, WINDOW_SAMPLES - 32_000));
        long.extend(tones());
        assert_eq!(features(&long), features(&long[20_000..]));
        assert_ne!(features(&long), features(&tones()[..16_000]));
        assert_eq!(features(&[]).len(), N_MELS * FRAMES);
        assert!(features(&[]).iter().all(|v| v.is_finite()));
    }
}

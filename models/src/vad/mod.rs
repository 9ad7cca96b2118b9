//! Voice activity detection: speech probability per 16 kHz frame, and speech segments.
//!
//! [`SileroVad`] is the shared model (a small pool of ONNX sessions); each audio stream gets
//! its own [`VadStream`] holding the recurrent state, so many calls share few sessions.

mod segmenter;
mod silero;

pub use segmenter::{SegmenterConfig, SpeechSegment, SpeechSegmenter};
pub use silero::{FRAME_SAMPLES, SileroVad, VadStream};

use crate::onnx::OnnxError;

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("VAD frames must be {expected} samples at 16 kHz, got {got}")]
    FrameSize { expected: usize, got: usize },
    #[error("VAD inference failed: {0}")]
    Inference(String),
}

/// Anything that scores 16 kHz frames for speech.
pub trait VoiceActivity {
    /// Probability in [0, 1] that `frame` (exactly [`FRAME_SAMPLES`] samples) is speech.
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, VadError>;
    /// Forget everything heard so far.
    fn reset(&mut self);
}

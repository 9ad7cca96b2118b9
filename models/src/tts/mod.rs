//! Text-to-speech: a small streaming trait and its Piper implementation.
//!
//! Synthesis streams: the text is cut into chunks (first clause, then sentences) and each
//! chunk's audio is sent as soon as it exists, so playback can start long before the whole
//! reply is synthesized.

mod phonemize;
mod piper;
pub mod text;

pub use phonemize::{ESPEAK_DATA_ENV, espeak_data_parent, export_espeak_data_dir, phonemize};
pub use piper::{PiperConfig, PiperEngine};

use tokio::sync::mpsc;

use crate::onnx::OnnxError;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("voice not usable: {0} (run `switchboard models fetch`)")]
    Voice(String),
    #[error("phonemization failed: {0}")]
    Phonemize(String),
    #[error("synthesis failed: {0}")]
    Inference(String),
    #[error("text-to-speech is overloaded: {0} requests already queued")]
    Overloaded(usize),
    #[error("nothing to say")]
    EmptyText,
}

#[derive(Debug, Clone, Copy)]
pub struct SpeakOptions {
    /// Speaking rate: 1.0 is the voice's own, 2.0 twice as fast (0.25..=4.0).
    pub speed: f32,
}

impl Default for SpeakOptions {
    fn default() -> Self {
        Self { speed: 1.0 }
    }
}

/// Audio for one chunk of the text.
#[derive(Debug, Clone)]
pub struct AudioChunk {
    /// Position of this chunk in the reply, from 0.
    pub index: usize,
    /// The words this audio speaks.
    pub text: String,
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// Audio chunks in order. The stream ends after the last chunk, or after one `Err`.
/// Dropping it stops synthesis of the chunks not yet made.
#[derive(Debug)]
pub struct TtsStream {
    rx: mpsc::Receiver<Result<AudioChunk, TtsError>>,
}

impl TtsStream {
    pub(crate) fn new(rx: mpsc::Receiver<Result<AudioChunk, TtsError>>) -> Self {
        Self { rx }
    }

    pub(crate) fn failed(err: TtsError) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(err));
        Self { rx }
    }

    /// The next chunk, on an async runtime.
    pub async fn next(&mut self) -> Option<Result<AudioChunk, TtsError>> {
        self.rx.recv().await
    }

    /// The next chunk, blocking the current thread. Not for async contexts.
    pub fn next_blocking(&mut self) -> Option<Result<AudioChunk, TtsError>> {
        self.rx.blocking_recv()
    }
}

/// Anything that speaks text as a stream of audio chunks.
pub trait TextToSpeech: Send + Sync {
    fn synthesize(&self, text: &str, opts: SpeakOptions) -> TtsStream;
    /// Output sample rate.
    fn sample_rate(&self) -> u32;
}

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

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::onnx::OnnxError;
pub use crate::queue::Priority;

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
    /// Where each chunk waits in the engine's queue (default: a live caller listens).
    pub priority: Priority,
}

impl Default for SpeakOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            priority: Priority::Live,
        }
    }
}

impl SpeakOptions {
    /// At `speed`, for a live caller.
    pub fn at_speed(speed: f32) -> Self {
        Self {
            speed,
            ..Self::default()
        }
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

type ChunkResult = Result<AudioChunk, TtsError>;

/// Where a stream's chunks are synthesized: an engine's queue, one chunk per request.
pub(crate) trait ChunkQueue: Send + Sync {
    /// Queue chunk `index` of a text; the answer arrives on the receiver (at once, when the
    /// queue refuses it).
    fn submit(
        &self,
        text: String,
        index: usize,
        opts: SpeakOptions,
    ) -> oneshot::Receiver<ChunkResult>;
}

/// Chunks asked for ahead of the one being read. The engine works one chunk at a time, and a
/// stream asks for more only as it is read, so a listener that reads slowly (or stops) holds
/// no worker. Eight keeps a fast reader's worker busy: with two or four, the 15 s paragraph's
/// real-time factor fell from ~15x to ~13x on 2 cores (BENCHMARKS.md).
const AHEAD: usize = 8;

/// Audio chunks in order. The stream ends after the last chunk, or after one `Err`.
/// Dropping it stops synthesis of the chunks not yet made.
pub struct TtsStream {
    engine: Option<Arc<dyn ChunkQueue>>,
    opts: SpeakOptions,
    /// Chunks not asked for yet, and the index of the first.
    todo: VecDeque<String>,
    next_index: usize,
    /// Chunks asked for, in order.
    asked: VecDeque<oneshot::Receiver<ChunkResult>>,
    /// A stream refused before any chunk was asked for.
    failed: Option<TtsError>,
}

impl std::fmt::Debug for TtsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsStream")
            .field("todo", &self.todo.len())
            .field("asked", &self.asked.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl TtsStream {
    /// Speak `chunks` through `engine`; the first are asked for at once.
    pub(crate) fn new(
        engine: Arc<dyn ChunkQueue>,
        chunks: Vec<String>,
        opts: SpeakOptions,
    ) -> Self {
        let mut s = Self {
            engine: Some(engine),
            opts,
            todo: chunks.into(),
            next_index: 0,
            asked: VecDeque::new(),
            failed: None,
        };
        s.ask_ahead();
        s
    }

    pub(crate) fn failed(err: TtsError) -> Self {
        Self {
            engine: None,
            opts: SpeakOptions::default(),
            todo: VecDeque::new(),
            next_index: 0,
            asked: VecDeque::new(),
            failed: Some(err),
        }
    }

    fn ask_ahead(&mut self) {
        let Some(engine) = &self.engine else { return };
        while self.asked.len() < AHEAD
            && let Some(text) = self.todo.pop_front()
        {
            self.asked
                .push_back(engine.submit(text, self.next_index, self.opts));
            self.next_index += 1;
        }
    }

    /// The receiver of the next chunk, having asked for the one after it.
    fn take_next(&mut self) -> Option<oneshot::Receiver<ChunkResult>> {
        let next = self.asked.pop_front();
        self.ask_ahead();
        next
    }

    /// A chunk's result; an error ends the stream.
    fn settle(&mut self, r: Result<ChunkResult, oneshot::error::RecvError>) -> ChunkResult {
        let r =
            r.unwrap_or_else(|_| Err(TtsError::Inference("the synthesis worker stopped".into())));
        if r.is_err() {
            self.todo.clear();
            self.asked.clear();
        }
        r
    }

    /// The next chunk, on an async runtime.
    pub async fn next(&mut self) -> Option<ChunkResult> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let rx = self.take_next()?;
        let r = rx.await;
        Some(self.settle(r))
    }

    /// The next chunk, blocking the current thread. Not for async contexts.
    pub fn next_blocking(&mut self) -> Option<ChunkResult> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let rx = self.take_next()?;
        let r = rx.blocking_recv();
        Some(self.settle(r))
    }
}

/// Anything that speaks text as a stream of audio chunks.
pub trait TextToSpeech: Send + Sync {
    fn synthesize(&self, text: &str, opts: SpeakOptions) -> TtsStream;
    /// Output sample rate.
    fn sample_rate(&self) -> u32;
}

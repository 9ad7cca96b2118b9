//! Piper voices through `piper-rs` and ONNX Runtime, on dedicated worker threads.
//!
//! `Session::run` takes `&mut self`, so each worker owns one session (about 200 MB) and
//! `sessions` chunks are synthesized at once. A worker takes one chunk (a clause or a
//! sentence) at a time from the urgency queue (`crate::queue`), so a long text or a slow
//! listener never holds it: a live call's next sentence waits at most for one chunk.
//! Phonemization is ours (see `phonemize`).

use std::path::PathBuf;
use std::sync::Arc;

use piper_rs::{ModelConfig, Piper};
use tokio::sync::oneshot;

use super::text::speech_chunks;
use super::{AudioChunk, ChunkQueue, SpeakOptions, TextToSpeech, TtsError, TtsStream, phonemize};
use crate::onnx;
use crate::queue::{Priority, Queue, Refused, Waiting};

#[derive(Debug, Clone)]
pub struct PiperConfig {
    /// The voice's `.onnx` file; its config is the same path with `.json` appended.
    pub voice: PathBuf,
    /// Directory holding the ONNX Runtime library (the models directory).
    pub models_dir: PathBuf,
    /// Chunks synthesized at once (one ONNX session each).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    /// Chunks allowed to wait for a session before `Overloaded` (a stream asks for up to
    /// eight ahead of its reader; a live call's reply, one at a time).
    pub queue: usize,
}

impl PiperConfig {
    pub fn new(models_dir: impl Into<PathBuf>, voice: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            voice: voice.into(),
            models_dir: models_dir.into(),
            sessions: 1,
            threads: cores,
            queue: 64,
        }
    }
}

/// One chunk of a stream.
struct Request {
    text: String,
    index: usize,
    opts: SpeakOptions,
    reply: oneshot::Sender<Result<AudioChunk, TtsError>>,
}

impl Waiting for Request {
    fn urgency(&self) -> Priority {
        self.opts.priority
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn refuse(self, capacity: usize) {
        let _ = self.reply.send(Err(TtsError::Overloaded(capacity)));
    }
}

/// The workers' queue is every stream's.
impl ChunkQueue for Queue<Request> {
    fn submit(
        &self,
        text: String,
        index: usize,
        opts: SpeakOptions,
    ) -> oneshot::Receiver<Result<AudioChunk, TtsError>> {
        let (reply, rx) = oneshot::channel();
        let req = Request {
            text,
            index,
            opts,
            reply,
        };
        match self.push(req) {
            Ok(()) => {}
            Err(Refused::Full(req)) => req.refuse(self.capacity()),
            Err(Refused::Closed(req)) => {
                let _ = req.reply.send(Err(TtsError::Inference(
                    "the synthesis worker stopped".into(),
                )));
            }
        }
        rx
    }
}

#[derive(Debug, Clone)]
struct Voice {
    espeak_voice: String,
    sample_rate: u32,
    length_scale: f32,
}

/// The Piper engine. Dropping it stops the workers once the queue drains.
pub struct PiperEngine {
    chunks: Arc<Queue<Request>>,
    voice: Voice,
}

impl std::fmt::Debug for PiperEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperEngine")
            .field("voice", &self.voice)
            .finish()
    }
}

fn read_config(path: &std::path::Path) -> Result<ModelConfig, TtsError> {
    let file = std::fs::File::open(path)
        .map_err(|e| TtsError::Voice(format!("{}: {e}", path.display())))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| TtsError::Voice(format!("{}: {e}", path.display())))
}

impl PiperEngine {
    pub fn load(cfg: PiperConfig) -> Result<Self, TtsError> {
        onnx::init(&cfg.models_dir)?;
        let mut config_path = cfg.voice.clone().into_os_string();
        config_path.push(".json");
        let config_path = PathBuf::from(config_path);
        let config = read_config(&config_path)?;
        let voice = Voice {
            espeak_voice: config.espeak.voice.clone(),
            sample_rate: config.audio.sample_rate,
            length_scale: config.inference.length_scale,
        };
        // Fail now, not on the first reply, when espeak-ng's data is missing.
        phonemize("test", &voice.espeak_voice)?;
        let chunks = Arc::new(Queue::new(cfg.queue));
        for i in 0..cfg.sessions.max(1) {
            let session = onnx::session(&cfg.voice, cfg.threads)?;
            let mut piper = Piper::from_session(session, read_config(&config_path)?);
            // ONNX Runtime plans and allocates on a session's first runs: pay for that while
            // loading, so neither the first caller nor a request racing the warm-up waits.
            for text in ["Hello.", "Sure, I can help with that."] {
                synthesize_chunk(&mut piper, &voice, text, 1.0)?;
            }
            let (chunks, voice) = (Arc::clone(&chunks), voice.clone());
            std::thread::Builder::new()
                .name(format!("piper-{i}"))
                .spawn(move || worker(piper, &voice, &chunks))
                .map_err(|e| TtsError::Voice(format!("spawning worker: {e}")))?;
        }
        Ok(Self { chunks, voice })
    }
}

impl TextToSpeech for PiperEngine {
    fn synthesize(&self, text: &str, opts: SpeakOptions) -> TtsStream {
        let chunks = speech_chunks(text);
        if chunks.is_empty() {
            return TtsStream::failed(TtsError::EmptyText);
        }
        let engine: Arc<dyn ChunkQueue> = self.chunks.clone();
        TtsStream::new(engine, chunks, opts)
    }

    fn sample_rate(&self) -> u32 {
        self.voice.sample_rate
    }
}

impl Drop for PiperEngine {
    fn drop(&mut self) {
        self.chunks.close();
    }
}

fn worker(mut piper: Piper, voice: &Voice, queue: &Queue<Request>) {
    // The queue drops chunks nobody listens for any more (hung up, barged in).
    while let Some(req) = queue.pop() {
        let speed = req.opts.speed.clamp(0.25, 4.0);
        let result =
            synthesize_chunk(&mut piper, voice, &req.text, speed).map(|samples| AudioChunk {
                index: req.index,
                text: req.text,
                samples,
                sample_rate: voice.sample_rate,
            });
        let _ = req.reply.send(result);
    }
}

fn synthesize_chunk(
    piper: &mut Piper,
    voice: &Voice,
    text: &str,
    speed: f32,
) -> Result<Vec<f32>, TtsError> {
    let phonemes = phonemize(text, &voice.espeak_voice)?;
    if phonemes.is_empty() {
        return Ok(Vec::new());
    }
    let (samples, _) = piper
        .create(
            &phonemes,
            true,
            None,
            Some(voice.length_scale / speed),
            None,
            None,
        )
        .map_err(|e| TtsError::Inference(e.to_string()))?;
    Ok(samples)
}

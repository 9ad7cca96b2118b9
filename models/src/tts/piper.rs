//! Piper voices through `piper-rs` and ONNX Runtime, on dedicated worker threads.
//!
//! `Session::run` takes `&mut self`, so each worker owns one session (about 200 MB) and
//! `sessions` replies are synthesized at once. Phonemization is ours (see `phonemize`).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use piper_rs::{ModelConfig, Piper};
use tokio::sync::mpsc;

use super::text::speech_chunks;
use super::{AudioChunk, SpeakOptions, TextToSpeech, TtsError, TtsStream, phonemize};
use crate::onnx;

/// Chunks buffered ahead of the consumer; synthesis waits when the consumer falls behind.
const STREAM_BUFFER: usize = 4;

#[derive(Debug, Clone)]
pub struct PiperConfig {
    /// The voice's `.onnx` file; its config is the same path with `.json` appended.
    pub voice: PathBuf,
    /// Directory holding the ONNX Runtime library (the models directory).
    pub models_dir: PathBuf,
    /// Replies synthesized at once (one ONNX session each).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    /// Replies allowed to wait for a session before `Overloaded`.
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
            queue: 16,
        }
    }
}

struct Request {
    text: String,
    opts: SpeakOptions,
    out: mpsc::Sender<Result<AudioChunk, TtsError>>,
}

#[derive(Debug, Clone)]
struct Voice {
    espeak_voice: String,
    sample_rate: u32,
    length_scale: f32,
}

pub struct PiperEngine {
    tx: SyncSender<Request>,
    voice: Voice,
    queue: usize,
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
        let (tx, rx) = sync_channel::<Request>(cfg.queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cfg.sessions.max(1) {
            let session = onnx::session(&cfg.voice, cfg.threads)?;
            let mut piper = Piper::from_session(session, read_config(&config_path)?);
            // ONNX Runtime plans and allocates on a session's first runs: pay for that while
            // loading, so neither the first caller nor a request racing the warm-up waits.
            for text in ["Hello.", "Sure, I can help with that."] {
                synthesize_chunk(&mut piper, &voice, text, 1.0)?;
            }
            let (rx, voice) = (Arc::clone(&rx), voice.clone());
            std::thread::Builder::new()
                .name(format!("piper-{i}"))
                .spawn(move || worker(piper, voice, rx))
                .map_err(|e| TtsError::Voice(format!("spawning worker: {e}")))?;
        }
        Ok(Self {
            tx,
            voice,
            queue: cfg.queue,
        })
    }
}

impl TextToSpeech for PiperEngine {
    fn synthesize(&self, text: &str, opts: SpeakOptions) -> TtsStream {
        if speech_chunks(text).is_empty() {
            return TtsStream::failed(TtsError::EmptyText);
        }
        let (out, rx) = mpsc::channel(STREAM_BUFFER);
        let req = Request {
            text: text.to_owned(),
            opts,
            out,
        };
        match self.tx.try_send(req) {
            Ok(()) => TtsStream::new(rx),
            Err(TrySendError::Full(_)) => TtsStream::failed(TtsError::Overloaded(self.queue)),
            Err(TrySendError::Disconnected(_)) => {
                TtsStream::failed(TtsError::Inference("the synthesis worker stopped".into()))
            }
        }
    }

    fn sample_rate(&self) -> u32 {
        self.voice.sample_rate
    }
}

fn worker(mut piper: Piper, voice: Voice, rx: Arc<Mutex<Receiver<Request>>>) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(req) = next else { return };
        let speed = req.opts.speed.clamp(0.25, 4.0);
        for (index, chunk) in speech_chunks(&req.text).into_iter().enumerate() {
            if req.out.is_closed() {
                break; // the listener hung up or barged in
            }
            let result =
                synthesize_chunk(&mut piper, &voice, &chunk, speed).map(|samples| AudioChunk {
                    index,
                    text: chunk,
                    samples,
                    sample_rate: voice.sample_rate,
                });
            let failed = result.is_err();
            if req.out.blocking_send(result).is_err() || failed {
                break;
            }
        }
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

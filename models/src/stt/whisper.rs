//! whisper.cpp (through `whisper-rs`) on dedicated worker threads.
//!
//! One `WhisperContext` (the weights) is shared; each worker owns a `WhisperState` (the
//! buffers), so `workers` utterances run at once (with a multilingual model, a second state
//! per worker detects languages). Requests wait in a bounded queue, most
//! urgent first (`crate::queue`); a full queue is answered at once with `Overloaded` instead of
//! growing without bound.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::device;
use super::hooks::Hooks;
use super::language_check::{LanguageTokens, detect_language, spoken_instead};
use super::pieces::{cut_at_pauses, piece_prompt};
use super::{
    AudioCtx, DETECT_LANGUAGE, ENGLISH, LanguageSource, LearntLanguage, STT_SAMPLE_RATE, Segment,
    SpeechToText, SttError, SttJob, TranscribeOptions, Transcript, whisper_language,
};
use crate::audio::pcm;
use crate::job::Job;
use crate::provision::whisper_ggml;
use crate::queue::{Priority, Queue, Refused, Waiting};

/// whisper.cpp's encoder frames per second of audio (1500 per 30 s window).
const FRAMES_PER_SEC: f64 = 50.0;
const FULL_CTX: u32 = 1500;
/// Below this many frames (7.7 s) accuracy drops on short clips; measured in FACTS.md / BENCHMARKS.md.
const MIN_CTX: u32 = 384;
/// whisper.cpp refuses audio shorter than one second; shorter clips are padded with silence.
const MIN_SAMPLES: usize = STT_SAMPLE_RATE as usize + STT_SAMPLE_RATE as usize / 20;
/// Peak level under which audio is treated as digital silence and not decoded at all.
const SILENCE_PEAK: f32 = 1e-3;
/// Longest piece of an upload: a live turn that arrives meanwhile waits for at most this much
/// audio to be transcribed (about 0.6 s with tiny.en on 2 CPU cores; BENCHMARKS.md).
pub const DEFAULT_PIECE_SECS: f32 = 8.0;

/// Encoder frames to run for a clip of `samples` at 16 kHz: twice the clip plus a margin, at
/// least [`MIN_CTX`], rounded up to a multiple of 64; 0 (the full window) past 30 s.
pub fn audio_ctx_for(samples: usize) -> u32 {
    let frames = (samples as f64 / STT_SAMPLE_RATE as f64 * FRAMES_PER_SEC).ceil() as u32;
    let ctx = (2 * frames + 64).max(MIN_CTX).div_ceil(64) * 64;
    if ctx >= FULL_CTX { 0 } else { ctx }
}

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct WhisperConfig {
    /// ggml model file.
    pub model: PathBuf,
    /// Utterances transcribed at once (one whisper state each).
    pub workers: usize,
    /// CPU threads per utterance.
    pub threads: usize,
    /// Requests allowed to wait for a worker before `Overloaded`.
    pub queue: usize,
    /// Use the GPU when built with `cuda` and one is present.
    pub use_gpu: bool,
    /// Flash attention in whisper.cpp (GPU only; the CPU path is left as measured).
    pub flash_attn: bool,
    /// `Batch` requests longer than this many seconds are transcribed a piece at a time, cut
    /// at pauses, with whatever more urgent arrives in between (0: whole, in one run).
    pub piece_secs: f32,
}

impl WhisperConfig {
    pub fn new(model: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            model: model.into(),
            workers: 1,
            threads: cores,
            queue: 16,
            use_gpu: true,
            flash_attn: true,
            piece_secs: DEFAULT_PIECE_SECS,
        }
    }

    /// `workers` states in this engine, the machine's cores split evenly between the
    /// `states_on_machine` states of every engine that runs at once (at least this one's).
    pub fn sharing_cores(mut self, workers: usize, states_on_machine: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        self.workers = workers.max(1);
        self.threads = (cores / states_on_machine.max(self.workers)).max(1);
        self
    }
}

struct Request {
    audio: Vec<f32>,
    opts: TranscribeOptions,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Transcript, SttError>>,
}

impl Waiting for Request {
    fn urgency(&self) -> Priority {
        self.opts.urgency.get()
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn refuse(self, capacity: usize) {
        let _ = self.reply.send(Err(SttError::Overloaded(capacity)));
    }
}

/// The whisper.cpp engine. Dropping it stops the workers once the queue drains.
pub struct WhisperEngine {
    requests: Arc<Queue<Request>>,
    backend: &'static str,
    device: String,
    workers: usize,
    model: String,
    multilingual: bool,
}

impl std::fmt::Debug for WhisperEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperEngine")
            .field("backend", &self.backend)
            .field("device", &self.device)
            .field("model", &self.model)
            .finish()
    }
}

impl WhisperEngine {
    /// Load the model and start the workers.
    pub fn load(cfg: WhisperConfig) -> Result<Self, SttError> {
        check_model_file(&cfg.model)?;
        whisper_rs::install_logging_hooks();
        let gpu = if cfg.use_gpu {
            device::gpus().into_iter().next()
        } else {
            None
        };
        if cfg.use_gpu && cfg!(feature = "cuda") && gpu.is_none() {
            tracing::warn!(
                "built with CUDA but no usable GPU was found (no device, or no NVIDIA driver); \
                 speech-to-text runs on the CPU"
            );
        }
        let mut params = WhisperContextParameters::default();
        params.use_gpu(gpu.is_some());
        params.flash_attn(gpu.is_some() && cfg.flash_attn);
        let path = cfg
            .model
            .to_str()
            .ok_or_else(|| SttError::Model("model path is not UTF-8".into()))?;
        let ctx = WhisperContext::new_with_params(path, params)
            .map_err(|e| SttError::Model(format!("{}: {e}", cfg.model.display())))?;
        let multilingual = ctx.is_multilingual();
        let requests = Arc::new(Queue::new(cfg.queue));
        let piece_len = (cfg.piece_secs.max(0.0) * STT_SAMPLE_RATE as f32) as usize;
        for i in 0..cfg.workers.max(1) {
            let create = || {
                ctx.create_state()
                    .map_err(|e| SttError::Model(format!("creating whisper state: {e}")))
            };
            let states = States {
                main: create()?,
                detect: if multilingual { Some(create()?) } else { None },
                languages: multilingual.then(|| LanguageTokens::new(&ctx)),
            };
            let requests = Arc::clone(&requests);
            let threads = cfg.threads.max(1);
            std::thread::Builder::new()
                .name(format!("whisper-{i}"))
                .spawn(move || worker(states, &requests, threads, piece_len))
                .map_err(|e| SttError::Model(format!("spawning worker: {e}")))?;
        }
        let workers = cfg.workers.max(1);
        let backend = if gpu.is_some() { "cuda" } else { "cpu" };
        let device = match &gpu {
            Some(gpu) => gpu.to_string(),
            None => format!("CPU, {} threads per utterance", cfg.threads.max(1)),
        };
        tracing::info!(
            backend,
            device,
            workers,
            multilingual,
            model = %cfg.model.display(),
            "speech-to-text loaded"
        );
        Ok(Self {
            requests,
            backend,
            device,
            workers,
            model: model_name(&cfg.model),
            multilingual,
        })
    }

    /// What inference runs on: the GPU's name and memory, or the CPU and its thread count.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Utterances transcribed at once.
    pub fn workers(&self) -> usize {
        self.workers
    }
}

/// `…/ggml-tiny.en-q8_0.bin` -> `whisper-tiny.en-q8_0`; other file names keep their stem.
fn model_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy());
    match stem.strip_prefix("ggml-") {
        Some(name) => format!("whisper-{name}"),
        None => stem.into_owned(),
    }
}

/// Check the file is a complete ggml Whisper model before handing it to whisper.cpp, so a
/// truncated or foreign file gets a clear error instead of whatever the C++ loader does.
fn check_model_file(path: &Path) -> Result<(), SttError> {
    let bytes =
        std::fs::read(path).map_err(|e| SttError::Model(format!("{}: {e}", path.display())))?;
    whisper_ggml::summarize(&bytes)
        .map(|_| ())
        .map_err(|e| SttError::Model(format!("{}: {e}", path.display())))
}

impl SpeechToText for WhisperEngine {
    fn transcribe(&self, audio: Vec<f32>, opts: TranscribeOptions) -> SttJob {
        let lost = || SttError::WorkerGone;
        if audio.is_empty() {
            return Job::failed(SttError::EmptyAudio, lost);
        }
        let (reply, rx) = oneshot::channel();
        let req = Request {
            audio,
            opts,
            enqueued: Instant::now(),
            reply,
        };
        match self.requests.push(req) {
            Ok(()) => Job::new(rx, lost),
            Err(Refused::Full(req)) => {
                req.refuse(self.requests.capacity());
                Job::new(rx, lost)
            }
            Err(Refused::Closed(_)) => Job::failed(SttError::WorkerGone, lost),
        }
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn multilingual(&self) -> bool {
        self.multilingual
    }
}

impl Drop for WhisperEngine {
    fn drop(&mut self) {
        self.requests.close();
    }
}

/// One worker's whisper.cpp buffers.
pub(super) struct States {
    /// Decodes.
    pub(super) main: WhisperState,
    /// Detects the language (multilingual models only). whisper.cpp detects with the encoder
    /// window its state's previous run left, and decoding runs windows sized to the clip; a
    /// state that never decodes keeps the full 30 s window Whisper was trained to detect with.
    pub(super) detect: Option<WhisperState>,
    /// The language tokens, to check a decoding's language (multilingual models only).
    pub(super) languages: Option<LanguageTokens>,
}

fn worker(mut states: States, requests: &Queue<Request>, threads: usize, piece_len: usize) {
    // The queue drops requests nobody waits for any more.
    while let Some(mut req) = requests.pop() {
        if states.detect.is_none() {
            // An English-only model has no language token to give (nor any to detect).
            req.opts.language = None;
        }
        let long_batch = piece_len > 0
            && req.opts.urgency.get() == Priority::Batch
            && req.audio.len() > piece_len;
        if long_batch {
            serve_in_pieces(&mut states, req, requests, threads, piece_len);
        } else {
            serve(&mut states, req, threads);
        }
    }
}

fn serve(states: &mut States, req: Request, threads: usize) {
    let queued = req.enqueued.elapsed();
    // A dropped job (hang-up, superseded speculation) stops whisper.cpp mid-run.
    let reply = &req.reply;
    let cancelled = || reply.is_closed();
    let result = run(states, &req.audio, &req.opts, 0, threads, &cancelled).map(|mut t| {
        t.queued = queued;
        t
    });
    let _ = req.reply.send(result);
}

/// A long upload, a piece at a time ([`cut_at_pauses`]). Before each next piece, whatever more
/// urgent has arrived (a caller's turn) runs first, so it waits for one piece at most, not for
/// the whole file. Each piece is prompted with the caller's prompt and the end of the text so
/// far, as whisper.cpp does between its own 30 s windows; segments keep the file's timeline.
fn serve_in_pieces(
    states: &mut States,
    req: Request,
    requests: &Queue<Request>,
    threads: usize,
    piece_len: usize,
) {
    let queued = req.enqueued.elapsed();
    let reply = &req.reply;
    let cancelled = || reply.is_closed();
    let mut whole = Transcript {
        text: String::new(),
        segments: Vec::new(),
        audio_secs: req.audio.len() as f64 / STT_SAMPLE_RATE as f64,
        audio_ctx: 0,
        queued,
        inference: Default::default(),
        language: ENGLISH.into(),
        loops_stopped: 0,
        language_source: Default::default(),
    };
    for (n, piece) in cut_at_pauses(&req.audio, piece_len).into_iter().enumerate() {
        if n > 0 {
            while let Some(urgent) = requests.try_pop_above(Priority::Batch) {
                serve(states, urgent, threads);
            }
        }
        if cancelled() {
            return;
        }
        let opts = TranscribeOptions {
            prompt: piece_prompt(req.opts.prompt.as_deref(), &whole.text),
            // Once a piece with speech has told the language, the rest are heard in it.
            language: match req.opts.language.as_deref() {
                Some(DETECT_LANGUAGE) if !whole.segments.is_empty() => Some(whole.language.clone()),
                _ => req.opts.language.clone(),
            },
            ..req.opts.clone()
        };
        let offset_ms = piece.start as u64 * 1000 / STT_SAMPLE_RATE as u64;
        match run(
            states,
            &req.audio[piece],
            &opts,
            offset_ms,
            threads,
            &cancelled,
        ) {
            Ok(t) => {
                whole.segments.extend(t.segments);
                whole.text = text_of(&whole.segments);
                whole.inference += t.inference;
                whole.audio_ctx = whole.audio_ctx.max(t.audio_ctx);
                whole.language = t.language;
                whole.loops_stopped += t.loops_stopped;
            }
            Err(e) => {
                let _ = req.reply.send(Err(e));
                return;
            }
        }
    }
    let _ = req.reply.send(Ok(whole));
}

fn text_of(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One whisper.cpp run over `audio`, which starts `offset_ms` into what the caller sent.
fn run(
    states: &mut States,
    audio: &[f32],
    opts: &TranscribeOptions,
    offset_ms: u64,
    threads: usize,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Transcript, SttError> {
    let started = Instant::now();
    let audio_secs = audio.len() as f64 / STT_SAMPLE_RATE as f64;
    let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    let mut padded;
    let audio = if audio.len() < MIN_SAMPLES {
        padded = audio.to_vec();
        padded.resize(MIN_SAMPLES, 0.0);
        &padded[..]
    } else {
        audio
    };
    let audio_ctx = match opts.audio_ctx {
        AudioCtx::Auto => audio_ctx_for(audio.len()),
        AudioCtx::Full => 0,
        AudioCtx::Frames(n) if n >= FULL_CTX => 0,
        AudioCtx::Frames(n) => n,
    };
    let mut transcript = Transcript {
        text: String::new(),
        segments: Vec::new(),
        audio_secs,
        audio_ctx,
        queued: Default::default(),
        inference: Default::default(),
        language: ENGLISH.into(),
        loops_stopped: 0,
        language_source: Default::default(),
    };
    if peak < SILENCE_PEAK || pcm::rms(audio) == 0.0 {
        return Ok(transcript);
    }
    let learnt = opts.learnt.as_ref();
    let (language, source) = match opts.language.as_deref() {
        None => (ENGLISH, LanguageSource::Named),
        Some(DETECT_LANGUAGE) => match learnt.and_then(LearntLanguage::get) {
            Some(known) => (known, LanguageSource::Learnt),
            None => (
                detect_language(states, audio, threads)?,
                LanguageSource::Detected,
            ),
        },
        Some(l) => (
            whisper_language(l)
                .ok_or_else(|| SttError::Inference(format!("unknown language '{l}'")))?,
            LanguageSource::Named,
        ),
    };
    let decoding = Decoding {
        audio,
        opts,
        audio_ctx,
        offset_ms,
        threads,
        cancelled,
    };
    decoding.run(&mut states.main, language, &mut transcript)?;
    transcript.language_source = source;
    match (source, learnt) {
        (LanguageSource::Detected, Some(learnt)) => {
            // Before the reply goes out, so the next job this worker takes already knows it.
            learnt.learn(&transcript);
        }
        // A call's turn: still in the call's language? A streamed job keeps what it sent.
        (LanguageSource::Learnt, Some(learnt))
            if opts.segments.is_none() && learnt.teaches(&transcript) =>
        {
            let looped = transcript.loops_stopped > 0;
            if let Some(spoken) = spoken_instead(states, audio, language, looped, threads)? {
                decoding.run(&mut states.main, spoken, &mut transcript)?;
                transcript.language_source = LanguageSource::Switched { from: language };
                learnt.switch_to(spoken);
            }
        }
        _ => {}
    }
    transcript.inference = started.elapsed();
    Ok(transcript)
}

/// One decoding of a clip, which may run twice (in another language the second time).
struct Decoding<'a> {
    audio: &'a [f32],
    opts: &'a TranscribeOptions,
    audio_ctx: u32,
    offset_ms: u64,
    threads: usize,
    cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl Decoding<'_> {
    /// Decode in `language` into `transcript` (its language, segments, text and loops).
    fn run(
        &self,
        state: &mut WhisperState,
        language: &str,
        transcript: &mut Transcript,
    ) -> Result<(), SttError> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(Some(language));
        params.set_translate(self.opts.translate);
        params.set_token_timestamps(self.opts.word_times);
        params.set_audio_ctx(self.audio_ctx as i32);
        params.set_no_context(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // No temperature fallback: on live audio a second decode costs more than it gains.
        params.set_temperature_inc(0.0);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        if let Some(prompt) = &self.opts.prompt {
            params.set_initial_prompt(prompt);
        }
        let hooks = Hooks::new(
            self.cancelled,
            self.opts.segments.as_ref(),
            self.offset_ms,
            self.opts.word_times,
        );
        // SAFETY: `hooks` lives until `full` returns, and `params` is consumed by it.
        unsafe { hooks.install(&mut params) };
        state
            .full(params, self.audio)
            .map_err(|e| SttError::Inference(e.to_string()))?;
        transcript.language = language.to_owned();
        transcript.loops_stopped = hooks.loops_stopped.get();
        if transcript.loops_stopped > 0 {
            tracing::warn!(
                language,
                "speech-to-text: decoding fell into a repetition loop and was stopped (is the language right?)"
            );
        }
        transcript.segments = hooks.decoded.into_inner();
        if self.opts.word_times {
            super::word_fit::fit_to_speech(&mut transcript.segments, self.audio, self.offset_ms);
        }
        transcript.text = text_of(&transcript.segments);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_grows_with_the_clip_and_has_a_floor() {
        assert_eq!(audio_ctx_for(16_000), 384);
        assert_eq!(audio_ctx_for(3 * 16_000), 384);
        assert_eq!(audio_ctx_for(5 * 16_000), 576);
        assert_eq!(audio_ctx_for(10 * 16_000), 1088);
        assert_eq!(audio_ctx_for(15 * 16_000), 0);
        assert_eq!(audio_ctx_for(60 * 16_000), 0);
    }
}

//! Speech-to-text: a small trait and its whisper.cpp implementation.

pub mod device;
mod hooks;
mod language_check;
mod learnt;
mod pieces;
mod repetition;
mod whisper;
mod word_fit;
mod words;

use std::time::Duration;

pub use crate::queue::{Priority, Urgency};
pub use learnt::LearntLanguage;
pub use pieces::cut_at_pauses;
pub use whisper::{DEFAULT_PIECE_SECS, WhisperConfig, WhisperEngine, audio_ctx_for};
pub use words::Word;

/// The language Whisper is run in unless told otherwise.
pub const ENGLISH: &str = "en";

use crate::job::Job;

/// Audio to transcribe: mono f32 samples at 16 kHz.
pub const STT_SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("Whisper model not usable: {0} (run `switchboard models fetch`)")]
    Model(String),
    #[error("no audio to transcribe")]
    EmptyAudio,
    #[error("speech-to-text is overloaded: {0} requests already queued")]
    Overloaded(usize),
    #[error("transcription failed: {0}")]
    Inference(String),
    #[error("the speech-to-text worker stopped")]
    WorkerGone,
}

/// How much of Whisper's 30 s encoder window to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioCtx {
    /// Sized to the clip (see [`audio_ctx_for`]).
    #[default]
    Auto,
    /// The full 30 s window (1500 frames), as Whisper was trained.
    Full,
    /// An explicit number of encoder frames (50 per second of audio).
    Frames(u32),
}

#[derive(Debug, Clone, Default)]
pub struct TranscribeOptions {
    pub audio_ctx: AudioCtx,
    /// Text that conditions the decoder (names, jargon).
    pub prompt: Option<String>,
    /// Translate the speech into English instead of transcribing it (Whisper's `translate`
    /// task). Only a multilingual model translates: an English-only one transcribes.
    pub translate: bool,
    /// Time each token (whisper.cpp's token timestamps), for [`Segment::words`].
    pub word_times: bool,
    /// The language spoken, as a Whisper code ([`whisper_language`]), or [`DETECT_LANGUAGE`];
    /// `None` is English. An English-only model transcribes English whatever this says:
    /// callers check [`SpeechToText::multilingual`].
    pub language: Option<String>,
    /// With [`DETECT_LANGUAGE`]: the conversation's language once one of its jobs detected
    /// it, taken instead of detecting again, and taught by this job if it detects.
    pub learnt: Option<LearntLanguage>,
    /// Receives each segment as soon as it is decoded (whisper.cpp finishes a 30 s window,
    /// or a long `Batch` request's piece, at a time), before the whole transcript is ready.
    pub segments: Option<SegmentSink>,
    /// Where the request stands in the engine's queue (default: a live caller waits).
    pub urgency: Urgency,
}

impl TranscribeOptions {
    /// Default options at `priority`.
    pub fn at(priority: Priority) -> Self {
        Self {
            urgency: Urgency::new(priority),
            ..Self::default()
        }
    }
}

/// Where decoded segments go while a transcription runs.
pub type SegmentSink = tokio::sync::mpsc::UnboundedSender<Segment>;

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub no_speech_prob: f32,
    /// The segment's text tokens as decoded (timestamps and other special tokens left out).
    pub tokens: Vec<Token>,
}

/// One text token Whisper decoded, and how sure it was of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Its id in the model's vocabulary.
    pub id: i32,
    /// Its text: byte-level BPE, so a token may hold part of a character.
    pub bytes: Vec<u8>,
    /// Natural log of the probability the decoder gave it.
    pub logprob: f32,
    /// When it was said (start, end), in ms on the caller's timeline: only for a job that
    /// asked for [`TranscribeOptions::word_times`].
    pub span_ms: Option<(u64, u64)>,
}

impl Segment {
    /// The mean log probability of the segment's tokens (`avg_logprob` in OpenAI's
    /// `verbose_json`); 0 for a segment without text tokens.
    pub fn avg_logprob(&self) -> f32 {
        if self.tokens.is_empty() {
            return 0.0;
        }
        self.tokens.iter().map(|t| t.logprob).sum::<f32>() / self.tokens.len() as f32
    }
}

#[derive(Debug, Clone)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
    /// Seconds of audio transcribed.
    pub audio_secs: f64,
    /// The language transcribed (a Whisper code: the one asked for or detected; English when
    /// nothing was heard).
    pub language: String,
    /// Encoder frames used (0 = full window).
    pub audio_ctx: u32,
    /// Time waiting for a free worker.
    pub queued: Duration,
    /// Time in whisper.cpp.
    pub inference: Duration,
    /// Segments whose decoding fell into a repetition loop and was stopped (one copy of the
    /// phrase kept): a sign the speech is not in the language decoded.
    pub loops_stopped: u32,
    /// How `language` was chosen.
    pub language_source: LanguageSource,
}

/// How a transcript's language was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LanguageSource {
    /// Named by the request (English for an English-only model, or when none is named).
    #[default]
    Named,
    /// Detected on this audio.
    Detected,
    /// The conversation's ([`TranscribeOptions::learnt`]), and the speech was still in it.
    Learnt,
    /// The conversation's was `from`, but this speech was in another, which the
    /// conversation now follows.
    Switched { from: &'static str },
}

impl Transcript {
    /// Every text token of the transcript, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.segments.iter().flat_map(|s| s.tokens.iter())
    }
}

pub type SttJob = Job<Transcript, SttError>;

/// Anything that turns 16 kHz mono audio into text.
pub trait SpeechToText: Send + Sync {
    /// Queue `audio` (16 kHz mono f32) for transcription.
    fn transcribe(&self, audio: Vec<f32>, opts: TranscribeOptions) -> SttJob;
    /// Where inference runs ("cpu" or "cuda").
    fn backend(&self) -> &'static str;
    /// The model's name as clients see it (`whisper-tiny.en-q8_0`).
    fn model(&self) -> &str;
    /// Whether the model knows languages other than English (`base` does, `tiny.en` not).
    fn multilingual(&self) -> bool;
}

/// Whether a transcript's `text` holds any words (not only punctuation or nothing).
pub fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// [`TranscribeOptions::language`] asking a multilingual model to detect the language (one
/// full 30 s encoder pass more).
pub const DETECT_LANGUAGE: &str = "auto";

/// Whisper's code for a language named by an ISO-639-1 code or a locale (`de`, `pt-BR`,
/// `en_GB`, any case); `None` for a language Whisper does not know.
pub fn whisper_language(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    let primary = code.split(['-', '_']).next().unwrap_or_default();
    // whisper.cpp also takes English names ("german"); anything else (a NUL byte included,
    // which whisper-rs would panic on) is no language.
    if primary.is_empty() || primary.len() > 16 || !primary.bytes().all(|b| b.is_ascii_lowercase())
    {
        return None;
    }
    let id = whisper_rs::get_lang_id(primary)?;
    whisper_rs::get_lang_str(id)
}

/// A Whisper language code's English name, as OpenAI's `verbose_json` gives it (`german`).
pub fn language_name(code: &str) -> Option<&'static str> {
    whisper_rs::get_lang_id(code).and_then(whisper_rs::get_lang_str_full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_resolve_to_whispers_codes() {
        assert_eq!(whisper_language("de"), Some("de"));
        assert_eq!(whisper_language(" pt-BR "), Some("pt"));
        assert_eq!(whisper_language("EN_gb"), Some("en"));
        assert_eq!(whisper_language("xx"), None);
        assert_eq!(whisper_language(""), None);
        assert_eq!(whisper_language("d\0e"), None);
        assert_eq!(whisper_language("german"), Some("de"));
        assert_eq!(
            whisper_language("auto"),
            None,
            "detection is asked for by DETECT_LANGUAGE"
        );
        assert_eq!(language_name("de"), Some("german"));
        assert_eq!(language_name("en"), Some("english"));
    }
}

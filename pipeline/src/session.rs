//! Per-call settings, changed at any time by the client (`session.update` in Realtime terms).

use crate::call::end_of_turn::{self, Ending};
use crate::llm::{ToolChoice, ToolSpec};

/// Turn detection with voice activity: the Realtime API's `server_vad`, or its
/// `semantic_vad` when `eagerness` is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnDetection {
    /// Speech probability at which speech starts (0..1).
    pub threshold: f32,
    /// Audio kept from before the detected start of speech, in ms.
    pub prefix_padding_ms: u32,
    /// Silence that ends the user's turn, in ms.
    pub silence_duration_ms: u32,
    /// Start a response when a turn ends.
    pub create_response: bool,
    /// Let the caller's speech interrupt a response that is playing.
    pub interrupt_response: bool,
    /// Speech must last this long before it interrupts a playing response, so that
    /// backchannels ("uh-huh") and coughs do not cut the agent off.
    pub min_interrupt_ms: u32,
    /// Start transcribing once the caller has paused this long, before `silence_duration_ms`
    /// confirms the end of the turn, so the transcript is ready when it does (0: off). A
    /// pause that turns out not to end the turn costs one cancelled transcription. Below
    /// ~100 ms the turn's end padding is not yet buffered and the head start is not used.
    pub early_transcription_ms: u32,
    /// `semantic_vad`: how long a pause ends the turn depends on whether what the caller
    /// said so far reads as finished (`call/end_of_turn.rs`), not on `silence_duration_ms`.
    pub eagerness: Option<Eagerness>,
    /// No speech this long after a reply has played starts a response by itself (the
    /// Realtime API's `idle_timeout_ms`): the agent checks the caller is still there.
    pub idle_timeout_ms: Option<u32>,
}

impl TurnDetection {
    /// The default early transcription, and `semantic_vad`'s when none is asked for: it
    /// judges the turn by that transcript.
    const EARLY_TRANSCRIPTION_MS: u32 = 160;

    /// The silence that ends a turn whatever was said: `silence_duration_ms`, or with
    /// `semantic_vad` the longest wait its eagerness allows.
    pub fn max_silence_ms(&self) -> u32 {
        match self.eagerness {
            None => self.silence_duration_ms,
            Some(e) => end_of_turn::wait_ms(e, Ending::Unfinished),
        }
    }

    /// How long a pause starts the turn's transcription (0: not before the turn ends).
    /// `semantic_vad` always transcribes pauses: the transcript is what it judges.
    pub fn early_ms(&self) -> u32 {
        match (self.eagerness, self.early_transcription_ms) {
            (Some(_), 0) => Self::EARLY_TRANSCRIPTION_MS,
            (_, ms) => ms,
        }
    }
}

/// How soon `semantic_vad` ends a turn (the Realtime API's `eagerness`; `auto` is `medium`):
/// the pauses each level waits are in `call/end_of_turn.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eagerness {
    Low,
    Medium,
    High,
    Auto,
}

impl Eagerness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Auto => "auto",
        }
    }
}

impl Default for TurnDetection {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
            min_interrupt_ms: 250,
            early_transcription_ms: Self::EARLY_TRANSCRIPTION_MS,
            eagerness: None,
            idle_timeout_ms: None,
        }
    }
}

/// Noise suppression of the caller's audio before the VAD and Whisper hear it (the Realtime
/// API's `noise_reduction`). Both kinds run the same RNNoise model; the kind is kept so the
/// session reports what the client chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseReduction {
    /// Close-talking microphones (headsets, phones).
    NearField,
    /// Laptop and room microphones.
    FarField,
}

impl NoiseReduction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NearField => "near_field",
            Self::FarField => "far_field",
        }
    }
}

/// Everything a call's behaviour depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// System prompt.
    pub instructions: String,
    /// Answer with speech (and its transcript); `false` answers with text only.
    pub audio_output: bool,
    /// Voice name (reported back; the gateway serves one Piper voice per engine).
    pub voice: String,
    /// Speaking rate, 1.0 = the voice's own.
    pub speed: f32,
    /// Sample rate of the caller's audio as the channel hands it over.
    pub input_rate: u32,
    /// Sample rate the channel wants reply audio in.
    pub output_rate: u32,
    /// `None`: the client commits turns itself.
    pub turn_detection: Option<TurnDetection>,
    pub tools: Vec<ToolSpec>,
    /// MCP servers the client declared: the call connects to them and runs their tools.
    pub mcp: Vec<crate::tools::client_mcp::ClientMcpServer>,
    pub tool_choice: ToolChoice,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// Responses in a row that may end in tool calls before tools are withheld.
    pub max_tool_rounds: u32,
    /// Transcribe only (a Realtime transcription session): every turn is transcribed and
    /// none is answered; a request for a response is refused.
    pub transcription_only: bool,
    /// Text that conditions the transcription of the caller's speech (names, jargon).
    pub transcription_prompt: Option<String>,
    /// The language the caller speaks (a Whisper code). `None`: English with an English-only
    /// model; with a multilingual one, the caller's, detected on their turns
    /// (`call/language.rs`).
    pub transcription_language: Option<String>,
    /// `None`: the caller's audio is used as it arrives.
    pub noise_reduction: Option<NoiseReduction>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            instructions: "You are a helpful voice assistant. Answer briefly, in plain spoken \
                           sentences without lists or markup."
                .into(),
            audio_output: true,
            voice: "joe".into(),
            speed: 1.0,
            input_rate: 24_000,
            output_rate: 24_000,
            turn_detection: Some(TurnDetection::default()),
            tools: Vec::new(),
            mcp: Vec::new(),
            tool_choice: ToolChoice::Auto,
            temperature: None,
            max_output_tokens: None,
            max_tool_rounds: 10,
            transcription_only: false,
            transcription_prompt: None,
            transcription_language: None,
            noise_reduction: None,
        }
    }
}

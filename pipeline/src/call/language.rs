//! The language a call's speech is transcribed in: the one the session names; or, with a
//! multilingual model and none named, the caller's own, detected by Whisper on their turns
//! until one long enough to trust has been heard, then kept for the rest of the call (as
//! OpenAI's whisper-1 detects when no language is given). Detection costs an encoder pass
//! over Whisper's full window (~1.75 s with base q8_0 on two CPU cores, tens of ms on a
//! GPU), so a call pays it on its first turn, not on every turn. An English-only model
//! transcribes English whatever is named.

use switchboard_models::stt::{DETECT_LANGUAGE, Priority, TranscribeOptions, Transcript};

use super::actor::CallActor;

/// The least audio (turn with its padding) whose detected language a call keeps: a word or
/// two is too weak a sample.
const MIN_DETECTION_SECS: f64 = 2.0;

impl CallActor {
    /// How the caller's speech is transcribed: at `priority`, with the session's prompt, in
    /// the call's language (or detecting it).
    pub(super) fn transcribe_options(&self, priority: Priority) -> TranscribeOptions {
        let language = match (&self.config.transcription_language, &self.heard_language) {
            (Some(named), _) => Some(named.clone()),
            (None, Some(heard)) => Some(heard.clone()),
            (None, None) if self.deps.stt.multilingual() => Some(DETECT_LANGUAGE.to_owned()),
            (None, None) => None,
        };
        TranscribeOptions {
            prompt: self.config.transcription_prompt.clone(),
            language,
            ..TranscribeOptions::at(priority)
        }
    }

    /// A turn was transcribed as `heard`: if it detected the language and is long enough
    /// to trust, the call keeps that language.
    pub(super) fn learn_language(&mut self, heard: &Transcript) {
        if self.config.transcription_language.is_some()
            || self.heard_language.is_some()
            || !self.deps.stt.multilingual()
            || heard.audio_secs < MIN_DETECTION_SECS
            || !heard.text.chars().any(char::is_alphanumeric)
        {
            return;
        }
        tracing::info!(call = %self.call_id, language = %heard.language, "caller's language detected");
        self.deps
            .metrics
            .languages_detected_total
            .with_label_values(&[heard.language.as_str()])
            .inc();
        self.heard_language = Some(heard.language.clone());
    }
}

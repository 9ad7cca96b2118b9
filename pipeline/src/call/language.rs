//! The language a call's speech is transcribed in: the one the session names; or, with a
//! multilingual model and none named, the caller's own, detected by Whisper and then kept
//! for the rest of the call (as OpenAI's whisper-1 detects when no language is given).
//! An English-only model transcribes English whatever is named.
//!
//! Detection costs an encoder pass over Whisper's full window (~1.75 s with base q8_0 on
//! two CPU cores, tens of ms on a GPU), so a call detects once, not every turn, and as soon
//! as it can: once a turn has `DETECT_AFTER_SPEECH_MS` of speech, its audio so far is
//! detected while the caller goes on, so a longer first turn is transcribed in the language
//! already known. Until a language is kept, each turn's own transcription detects too (a
//! short first turn pays the pass), and the first job that detects on enough audio teaches
//! it (`LearntLanguage`): the worker keeps it before that job's reply, so a turn's
//! transcription queued behind the detection while the caller spoke takes its language
//! rather than paying the pass again.

use switchboard_models::stt::{DETECT_LANGUAGE, Priority, TranscribeOptions, Transcript};
use tokio_util::task::AbortOnDropHandle;

use super::actor::CallActor;

/// The least audio (turn with its padding) whose detected language a call keeps: a word or
/// two is too weak a sample.
pub(super) const MIN_DETECTION_SECS: f64 = 2.0;
/// Speech in a turn after which its language is detected while the caller goes on.
const DETECT_AFTER_SPEECH_MS: u64 = 2_000;

/// A detection started while the caller spoke: its turn, and the job (dropping it stops
/// whisper.cpp). One per turn.
pub(super) struct Detecting {
    item_id: String,
    _job: AbortOnDropHandle<()>,
}

impl CallActor {
    /// How the caller's speech is transcribed: at `priority`, with the session's prompt, in
    /// the call's language (or detecting it).
    pub(super) fn transcribe_options(&self, priority: Priority) -> TranscribeOptions {
        let detects = self.detects_language();
        let language = match (
            &self.config.transcription_language,
            self.learnt_language.get(),
        ) {
            (Some(named), _) => Some(named.clone()),
            (None, Some(learnt)) => Some(learnt.to_owned()),
            (None, None) if detects => Some(DETECT_LANGUAGE.to_owned()),
            (None, None) => None,
        };
        TranscribeOptions {
            prompt: self.config.transcription_prompt.clone(),
            language,
            // A job queued now may start after another has learnt the language: it then
            // takes it rather than detecting again.
            learnt: detects.then(|| self.learnt_language.clone()),
            ..TranscribeOptions::at(priority)
        }
    }

    /// Whether the call's language is still to be detected.
    fn detects_language(&self) -> bool {
        self.config.transcription_language.is_none()
            && self.learnt_language.get().is_none()
            && self.deps.stt.multilingual()
    }

    /// The open turn has `speech_ms` of speech from `start_ms`: once that is enough, detect
    /// its language on the audio so far (and `prefix_ms` before), while the caller goes on.
    pub(super) fn detect_while_speaking(&mut self, start_ms: u64, speech_ms: u64, prefix_ms: u64) {
        if speech_ms < DETECT_AFTER_SPEECH_MS || !self.detects_language() {
            return;
        }
        let Some(turn) = self.turn.as_ref() else {
            return;
        };
        if self
            .detecting
            .as_ref()
            .is_some_and(|d| d.item_id == turn.item_id)
        {
            return;
        }
        let span = self
            .input
            .span(start_ms.saturating_sub(prefix_ms), self.input.now_ms());
        // Still to be detected, so these options detect.
        let opts = self.transcribe_options(Priority::Speculative);
        let job = self.deps.stt.transcribe(self.input.copy(&span), opts);
        let tx = self.language_tx.clone();
        let task = tokio::spawn(async move {
            if let Ok(heard) = job.await {
                let _ = tx.send(heard).await;
            }
        });
        self.detecting = Some(Detecting {
            item_id: turn.item_id.clone(),
            _job: AbortOnDropHandle::new(task),
        });
    }

    /// Speech was transcribed as `heard` (`from`: `turn`, a turn's transcript, or `speech`,
    /// the detection while the caller spoke). The worker learns the call's language from the
    /// first job that detected it on enough speech, before that job's reply; the first
    /// transcript back that taught it is logged and counted.
    pub(super) fn learn_language(&mut self, heard: &Transcript, from: &str) {
        if self.language_announced
            || self.config.transcription_language.is_some()
            || !self.deps.stt.multilingual()
            || !self.learnt_language.learn(heard)
        {
            return;
        }
        self.language_announced = true;
        tracing::info!(call = %self.call_id, language = %heard.language, from, "caller's language detected");
        self.deps
            .metrics
            .languages_detected_total
            .with_label_values(&[heard.language.as_str(), from])
            .inc();
    }
}

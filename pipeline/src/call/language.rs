//! The language a call's speech is transcribed in: the one the session names; or, with a
//! multilingual model and none named, the caller's own, detected by Whisper and then kept
//! (as OpenAI's whisper-1 detects when no language is given) until the caller switches: the
//! worker checks each turn against it and follows a switch (`models/src/stt/
//! language_check.rs`). An English-only model transcribes English whatever is named.
//!
//! Detection costs an encoder pass over Whisper's full window (~1.75 s with base q8_0 on
//! two CPU cores, tens of ms on a GPU), so a call detects once, not every turn, and as soon
//! as it can: once a turn has `DETECT_AFTER_SPEECH_MS` of speech, its audio so far is
//! detected while the caller goes on, so a longer first turn is transcribed in the language
//! already known. Until a language is kept, each turn's own transcription detects too (a
//! short first turn pays the pass), and the first job that detects on enough audio teaches
//! it (`LearntLanguage`): the worker keeps it before that job's reply, so a turn's
//! transcription queued behind the detection while the caller spoke takes its language
//! rather than paying the pass again. Turns too short to learn from are kept, and the next
//! turn's detection hears them before its own speech: after a short "Hallo" the call's
//! language is detected early in the second turn, not at the end of every short turn.

use switchboard_models::stt::{
    DETECT_LANGUAGE, LearntLanguage, Priority, TranscribeOptions, Transcript,
};
use tokio_util::task::AbortOnDropHandle;

use super::actor::CallActor;
use super::input::{ms_to_samples, samples_to_ms};

/// The least audio (turn with its padding) whose detected language a call keeps: a word or
/// two is too weak a sample.
const MIN_DETECTION_SECS: f64 = 2.0;
/// Speech (this turn's, and earlier turns' kept) after which a turn's language is detected
/// while the caller goes on.
const DETECT_AFTER_SPEECH_MS: u64 = 2_000;
/// The most of earlier turns' audio kept for detection: the latest, well inside Whisper's
/// 30 s window.
const MAX_EARLIER_MS: u64 = 10_000;
/// Silence between kept turns, and before the turn being detected.
const GAP_MS: u64 = 200;

/// What a call knows of its caller's language, and what it keeps to learn it.
pub(super) struct CallLanguage {
    /// The caller's language, once detected on enough speech, shared with the call's
    /// transcription jobs.
    learnt: LearntLanguage,
    /// The learnt language last logged and counted.
    announced: Option<&'static str>,
    /// The detection started while the caller spoke in a turn.
    detecting: Option<Detecting>,
    /// Earlier turns' audio, each followed by a short silence, while the language is still
    /// to be learnt.
    earlier: Vec<f32>,
}

/// A detection started while the caller spoke: its turn, and the job (dropping it stops
/// whisper.cpp). One per turn.
struct Detecting {
    item_id: String,
    _job: AbortOnDropHandle<()>,
}

impl CallLanguage {
    pub(super) fn new() -> Self {
        Self {
            learnt: LearntLanguage::new(MIN_DETECTION_SECS),
            announced: None,
            detecting: None,
            earlier: Vec::new(),
        }
    }

    /// Keep a committed turn's `audio` for the next detection, the latest `MAX_EARLIER_MS`.
    fn keep(&mut self, audio: &[f32]) {
        self.earlier.extend_from_slice(audio);
        self.earlier
            .resize(self.earlier.len() + ms_to_samples(GAP_MS) as usize, 0.0);
        let max = ms_to_samples(MAX_EARLIER_MS) as usize;
        if self.earlier.len() > max {
            self.earlier.drain(..self.earlier.len() - max);
        }
    }

    fn earlier_ms(&self) -> u64 {
        samples_to_ms(self.earlier.len() as u64)
    }
}

impl CallActor {
    /// How the caller's speech is transcribed: at `priority`, with the session's prompt, in
    /// the language the session names, else the caller's: detected until learnt, then the
    /// learnt one, which the worker checks each turn and follows when the caller switches.
    pub(super) fn transcribe_options(&self, priority: Priority) -> TranscribeOptions {
        let heard = self.language_is_heard();
        let language = match &self.config.transcription_language {
            Some(named) => Some(named.clone()),
            None if heard => Some(DETECT_LANGUAGE.to_owned()),
            None => None,
        };
        TranscribeOptions {
            prompt: self.config.transcription_prompt.clone(),
            language,
            // A job queued now may start after another has learnt the language: it then
            // takes it rather than detecting again.
            learnt: heard.then(|| self.language.learnt.clone()),
            ..TranscribeOptions::at(priority)
        }
    }

    /// Whether the call's language is still to be detected.
    fn detects_language(&self) -> bool {
        self.language_is_heard() && self.language.learnt.get().is_none()
    }

    /// Whether the call's language is the caller's, heard rather than named by the session
    /// (and a multilingual model can hear it).
    fn language_is_heard(&self) -> bool {
        self.config.transcription_language.is_none() && self.deps.stt.multilingual()
    }

    /// A turn's `audio` was committed: while the language is still to be detected, the next
    /// turn's detection hears it too.
    pub(super) fn keep_for_detection(&mut self, audio: &[f32]) {
        if self.detects_language() {
            self.language.keep(audio);
        }
    }

    /// The open turn has `speech_ms` of speech from `start_ms`: once that, with the earlier
    /// turns kept, is enough, detect the language on them and this turn's audio so far (and
    /// `prefix_ms` before), while the caller goes on.
    pub(super) fn detect_while_speaking(&mut self, start_ms: u64, speech_ms: u64, prefix_ms: u64) {
        if speech_ms + self.language.earlier_ms() < DETECT_AFTER_SPEECH_MS
            || !self.detects_language()
        {
            return;
        }
        let Some(turn) = self.turn.as_ref() else {
            return;
        };
        if self
            .language
            .detecting
            .as_ref()
            .is_some_and(|d| d.item_id == turn.item_id)
        {
            return;
        }
        let span = self
            .input
            .span(start_ms.saturating_sub(prefix_ms), self.input.now_ms());
        let mut audio = self.language.earlier.clone();
        audio.extend(self.input.copy(&span));
        // Still to be detected, so these options detect.
        let opts = self.transcribe_options(Priority::Speculative);
        let job = self.deps.stt.transcribe(audio, opts);
        let tx = self.language_tx.clone();
        let task = tokio::spawn(async move {
            if let Ok(heard) = job.await {
                let _ = tx.send(heard).await;
            }
        });
        self.language.detecting = Some(Detecting {
            item_id: turn.item_id.clone(),
            _job: AbortOnDropHandle::new(task),
        });
    }

    /// Speech was transcribed as `heard` (`from`: `turn`, a turn's transcript, or `speech`,
    /// the detection while the caller spoke). The worker learns the call's language from the
    /// first job that detected it on enough speech, before that job's reply, and switches it
    /// when a turn was in another; the first transcript back in a language newly learnt is
    /// logged and counted (`from="switch"` for a switch).
    pub(super) fn learn_language(&mut self, heard: &Transcript, from: &str) {
        if !self.language_is_heard() || !self.language.learnt.learn(heard) {
            return;
        }
        // Learnt now, so `Some`: heard's language, or one a later job switched to meanwhile.
        let learnt = self.language.learnt.get();
        if learnt == self.language.announced {
            return;
        }
        let before = std::mem::replace(&mut self.language.announced, learnt);
        self.language.earlier = Vec::new();
        // The language recorded, which a later job may have switched to since `heard`.
        let language = learnt.unwrap_or(heard.language.as_str());
        let from = match before {
            Some(before) => {
                tracing::info!(call = %self.call_id, language, before, "caller switched language");
                "switch"
            }
            None => {
                tracing::info!(call = %self.call_id, language, from, "caller's language detected");
                from
            }
        };
        self.deps
            .metrics
            .languages_detected_total
            .with_label_values(&[language, from])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_turns_are_kept_with_a_gap_and_only_the_latest_ten_seconds() {
        let mut language = CallLanguage::new();
        let turn = |ms: u64, level: f32| vec![level; ms_to_samples(ms) as usize];
        language.keep(&turn(1_000, 0.1));
        assert_eq!(language.earlier_ms(), 1_000 + GAP_MS);
        language.keep(&turn(6_000, 0.2));
        language.keep(&turn(6_000, 0.3));
        assert_eq!(language.earlier_ms(), MAX_EARLIER_MS);
        // The first turn is gone, the latest is whole and last, before its gap.
        let gap = ms_to_samples(GAP_MS) as usize;
        let latest =
            &language.earlier[language.earlier.len() - gap - ms_to_samples(6_000) as usize..];
        assert!(latest[..latest.len() - gap].iter().all(|&s| s == 0.3));
        assert!(latest[latest.len() - gap..].iter().all(|&s| s == 0.0));
        assert!(!language.earlier.contains(&0.1));
    }
}

//! A language learnt from a conversation's speech, shared by its transcription jobs.

use std::sync::{Arc, Mutex};

use super::{Transcript, has_words, whisper_language};

/// The language a conversation (a call) is in, once a transcription detected it on enough
/// speech. Its jobs that ask to detect ([`super::DETECT_LANGUAGE`]) carry it
/// ([`super::TranscribeOptions::learnt`]): the worker learns from the first one that
/// detected on at least `min_secs` of audio and heard words, and a job that starts after
/// that takes the language instead of running the full-window detection pass again, even
/// if it was queued before the language was known. A job that takes it checks the speech
/// is still in it (`language_check.rs`): a caller who switches language switches it.
#[derive(Debug, Clone)]
pub struct LearntLanguage {
    min_secs: f64,
    language: Arc<Mutex<Option<&'static str>>>,
}

impl LearntLanguage {
    /// Nothing learnt yet; a detection on less than `min_secs` of audio teaches nothing (a
    /// word or two is too weak a sample).
    pub fn new(min_secs: f64) -> Self {
        Self {
            min_secs,
            language: Arc::default(),
        }
    }

    /// A conversation already known to be in `language` (a Whisper code).
    pub fn known(min_secs: f64, language: &'static str) -> Self {
        let learnt = Self::new(min_secs);
        learnt.switch_to(language);
        learnt
    }

    /// The language, once learnt.
    pub fn get(&self) -> Option<&'static str> {
        *self.language.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `heard` is a sample long enough, and with words in it, to learn from.
    pub fn teaches(&self, heard: &Transcript) -> bool {
        heard.audio_secs >= self.min_secs && has_words(&heard.text)
    }

    /// Learn `heard`'s language if it is the first sample that [teaches](Self::teaches).
    /// True when the language learnt (now or before) is `heard`'s and `heard` was such a
    /// sample.
    pub fn learn(&self, heard: &Transcript) -> bool {
        let Some(language) = whisper_language(&heard.language) else {
            return false;
        };
        if !self.teaches(heard) {
            return false;
        }
        *self
            .language
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(language)
            == language
    }

    /// The conversation went on in `language` (a caller switched).
    pub(super) fn switch_to(&self, language: &'static str) {
        *self.language.lock().unwrap_or_else(|e| e.into_inner()) = Some(language);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(text: &str, language: &str, audio_secs: f64) -> Transcript {
        Transcript {
            text: text.into(),
            segments: Vec::new(),
            audio_secs,
            language: language.into(),
            audio_ctx: 0,
            queued: Default::default(),
            inference: Default::default(),
            loops_stopped: 0,
            language_source: Default::default(),
        }
    }

    #[test]
    fn the_first_long_enough_sample_with_words_is_learnt_and_shared() {
        let learnt = LearntLanguage::new(2.0);
        let copy = learnt.clone();
        assert!(!learnt.learn(&heard("Hallo", "de", 1.5)), "too short");
        assert!(!learnt.learn(&heard(" ... ", "de", 3.0)), "no words");
        assert_eq!(copy.get(), None);
        assert!(learnt.learn(&heard("Ich möchte einen Tisch", "de", 2.5)));
        assert_eq!(copy.get(), Some("de"));
        // Kept: a later sample in another language does not change it; a switch does.
        assert!(!copy.learn(&heard("I would like a table", "en", 3.0)));
        assert!(copy.learn(&heard("Für zwei Personen", "de", 2.0)));
        assert_eq!(learnt.get(), Some("de"));
        copy.switch_to("en");
        assert_eq!(learnt.get(), Some("en"));
    }
}

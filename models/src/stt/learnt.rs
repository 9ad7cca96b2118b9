//! A language learnt from a conversation's speech, shared by its transcription jobs.

use std::sync::{Arc, OnceLock};

use super::{Transcript, has_words};

/// The language a conversation (a call) turned out to be in, once a transcription detected
/// it on enough speech. Its jobs that ask to detect ([`super::DETECT_LANGUAGE`]) carry it
/// ([`super::TranscribeOptions::learnt`]): the worker learns from the first one that
/// detected on at least `min_secs` of audio and heard words, and a job that starts after
/// that takes the language instead of running the full-window detection pass again, even
/// if it was queued before the language was known.
#[derive(Debug, Clone)]
pub struct LearntLanguage {
    min_secs: f64,
    language: Arc<OnceLock<String>>,
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

    /// The language, once learnt.
    pub fn get(&self) -> Option<&str> {
        self.language.get().map(String::as_str)
    }

    /// Learn `heard`'s language if it is the first sample long enough and with words in it.
    /// True when the language learnt (now or before) is `heard`'s and `heard` was such a
    /// sample.
    pub fn learn(&self, heard: &Transcript) -> bool {
        if heard.audio_secs < self.min_secs || !has_words(&heard.text) {
            return false;
        }
        self.language.get_or_init(|| heard.language.clone()) == &heard.language
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
        // Kept: a later sample in another language does not change it.
        assert!(!copy.learn(&heard("I would like a table", "en", 3.0)));
        assert!(copy.learn(&heard("Für zwei Personen", "de", 2.0)));
        assert_eq!(learnt.get(), Some("de"));
    }
}

//! Semantic end of turn (the Realtime API's `semantic_vad`): how long a caller's pause must
//! last to end the turn depends on whether what they said so far reads as finished.
//!
//! The turn's words come from the transcription that starts when the caller pauses
//! (`turns.rs`). Whisper hears the audio, not only the words: it ends a sentence spoken with
//! a falling or questioning voice with `.` or `?`, and trails off with `...` or `,` where the
//! voice stayed up. Its transcript is judged by that punctuation and by the last word, in the
//! languages `words` keeps lists for: a sentence does not end on "the", "and" or "um", nor on
//! a preposition whose object has not come ("a table for", "une table pour"), whatever
//! Whisper's full stop or question mark says.
//! Smart Turn (`switchboard_models::end_of_turn`) hears the same pause: a model trained to tell
//! from the voice whether a speaker has finished. It is a second opinion on the transcript's
//! (`judge_heard`): the words decide when they leave the sentence open, and otherwise a
//! clear verdict of the model moves the judgement one step towards what it heard.
//! The judgement picks the pause (`wait_ms`): a finished turn ends at once or soon, an
//! unfinished one waits up to the eagerness's maximum (2, 4 or 8 s, as OpenAI's do). Until
//! the transcript is in, and if it never comes, that maximum is the VAD's silence.

mod numbers;
mod words;

use switchboard_models::end_of_turn::WINDOW_SAMPLES;
use tokio::task::JoinHandle;

use super::actor::CallActor;
use super::draft::EarlyReady;
use super::input::VadEvent;
use crate::session::Eagerness;

/// What a turn's transcript so far reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A whole sentence or question: the caller has probably finished.
    Finished,
    /// No end punctuation: Whisper was not sure either.
    Unsure,
    /// Trailing off ("...", ",") or on a word that leaves the sentence open.
    Unfinished,
}

impl Ending {
    /// The label of `switchboard_turn_ends_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Unsure => "unsure",
            Self::Unfinished => "unfinished",
        }
    }
}

/// The pause (ms of silence after the last speech) that ends a turn judged `ending`. 0 ends it
/// as soon as it is judged, that is once the early transcription is in.
pub fn wait_ms(eagerness: Eagerness, ending: Ending) -> u32 {
    let [finished, unsure, unfinished] = match eagerness {
        Eagerness::High => [0, 400, 2_000],
        Eagerness::Medium | Eagerness::Auto => [300, 800, 4_000],
        Eagerness::Low => [700, 1_500, 8_000],
    };
    match ending {
        Ending::Finished => finished,
        Ending::Unsure => unsure,
        Ending::Unfinished => unfinished,
    }
}

/// Punctuation that leaves a sentence open: a comma, a colon, a dash, an ellipsis.
fn trails_off(text: &str) -> bool {
    text.ends_with("..") || text.ends_with(['…', ',', ';', ':', '-', '–', '—'])
}

/// Judge a turn's transcript so far, spoken in `language` (a Whisper code). Its words are
/// judged too in the languages `words` has lists for; the others by punctuation alone.
pub fn judge(transcript: &str, language: &str) -> Ending {
    // Closing quotes and brackets do not change how a sentence ends.
    let text = transcript
        .trim()
        .trim_end_matches(['"', '\'', '”', '’', ')', ']']);
    if !text.chars().any(char::is_alphanumeric) {
        return Ending::Unsure;
    }
    if trails_off(text) {
        return Ending::Unfinished;
    }
    if words::open_words(language).is_some_and(|w| ends_open(text, w)) {
        return Ending::Unfinished;
    }
    match text.chars().last() {
        Some('?' | '!' | '.' | '。' | '？' | '！') => Ending::Finished,
        _ => Ending::Unsure,
    }
}

/// Smart Turn's probability at or above which a turn sounds complete (Pipecat's threshold).
pub const COMPLETE: f32 = 0.5;
/// Below this a turn sounds unfinished. Between the two the transcript decides: on
/// synthetic voices the model scores some whole sentences between 0.1 and 0.5 ("That's
/// fine." 0.43), and cut phrases below 0.1 (BENCHMARKS.md "End of turn").
pub const INCOMPLETE: f32 = 0.1;

/// Judge a turn's transcript so far with Smart Turn's `complete` probability for the same
/// audio, if it came. Words that leave the sentence open keep it unfinished: the model hears
/// "a table for" said with a falling voice as complete. Otherwise a clear verdict of the
/// model moves the transcript's judgement one step: a turn that sounds complete is finished
/// even without end punctuation; one that sounds unfinished waits longer, as unsure after a
/// full stop and as unfinished without one, unless it ends on a number.
///
/// A number read out sounds like a list still going whether or not it is whole: the model
/// scored "My account number is four five six seven." 0.01-0.04 and the cut "The card
/// number is four one two one" 0.01-0.03, and Whisper leaves the full stop off both
/// (BENCHMARKS.md "End of turn", numbers). Neither tells them apart, so such a turn waits as
/// unsure, not for the eagerness's maximum.
pub fn judge_heard(transcript: &str, language: &str, complete: Option<f32>) -> Ending {
    let read = judge(transcript, language);
    match (read, complete) {
        (Ending::Unfinished, _) | (_, None) => read,
        (_, Some(p)) if p >= COMPLETE => Ending::Finished,
        (Ending::Finished, Some(p)) if p < INCOMPLETE => Ending::Unsure,
        (Ending::Unsure, Some(p)) if p < INCOMPLETE && !ends_on_number(transcript, language) => {
            Ending::Unfinished
        }
        _ => read,
    }
}

/// Whether the last word of `text` is a number: it holds a digit ("4567", "555-123-4567",
/// "12th"), or it, or its last part after a hyphen, is a number word of `language` ("one
/// two", "one-o", "twenty-first", "dreiundzwanzig": `numbers.rs`). A word that only starts
/// with a number ("one-way", "seventh-day") waits for what it qualifies. A number word also
/// listed as dangling (the article "un", "een") is judged as such before this is asked.
fn ends_on_number(text: &str, language: &str) -> bool {
    let Some(last) = spoken_words(text).pop() else {
        return false;
    };
    let last_part = last.rsplit('-').next().unwrap_or(&last);
    last.chars().any(char::is_numeric)
        || words::open_words(language).is_some_and(|words| words.numbers.builds(last_part))
}

/// The words of `text`, lowercase, without the punctuation around them.
fn spoken_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
                .replace('’', "'")
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether the last word of `text` leaves a sentence open: a dangling word, or a preposition
/// without its object. A preposition said alone is a word of its own ("¡Para!": stop).
fn ends_open(text: &str, language: &words::OpenWords) -> bool {
    let words = spoken_words(text);
    let Some((last, before)) = words.split_last() else {
        return false;
    };
    if language.dangling.contains(&last.as_str()) {
        return true;
    }
    if before.is_empty() || !language.prepositions.contains(&last.as_str()) {
        return false;
    }
    let elliptical = last == "to"
        && before
            .last()
            .is_some_and(|w| language.elliptical_to.contains(&w.as_str()));
    let fronted = before
        .iter()
        .any(|w| language.fronting.contains(&w.as_str()));
    !elliptical && !fronted
}

impl CallActor {
    /// Start Smart Turn on the pausing turn that began at call sample `from`, on a blocking
    /// worker (model inference): its probability that the turn is complete, `None` if the
    /// model failed. It hears the pause so far too (~200 ms of it), as it was trained.
    pub(super) fn listen(&self, from: u64) -> JoinHandle<Option<f32>> {
        let end = self.input.total_samples();
        let start = from.max(end.saturating_sub(WINDOW_SAMPLES as u64));
        let tail = self.input.copy(&(start..end));
        let model = self.deps.end_of_turn.clone();
        let seconds = self.deps.metrics.end_of_turn_model_seconds.clone();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || {
            let heard = model.complete_probability(&tail);
            seconds.observe(started.elapsed().as_secs_f64());
            heard
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "end-of-turn model failed; judging the words alone")
                })
                .ok()
        })
    }

    /// `semantic_vad`: judge the early transcription `ready`, if its pause still lasts. The
    /// judgement is kept on the turn until speech goes on.
    pub(super) fn judge_pause(&mut self, ready: &EarlyReady) -> Option<Ending> {
        self.turn_detection()?.eagerness?;
        // Otherwise speech went on, or the turn has ended.
        let turn = self
            .turn
            .as_mut()
            .filter(|t| t.early.as_ref().is_some_and(|e| e.seq == ready.seq))?;
        let ending = judge_heard(&ready.text, &ready.language, ready.complete);
        turn.judged = Some(ending);
        tracing::debug!(
            ending = ending.as_str(),
            text = ready.text,
            complete = ready.complete,
            "end of turn judged"
        );
        Some(ending)
    }

    /// End the pausing turn judged `ending` once the pause is as long as that judgement
    /// waits: now, if it already is, or else by the VAD when it gets there.
    pub(super) async fn end_turn_after(&mut self, ending: Ending) {
        let Some(td) = self.turn_detection() else {
            return;
        };
        let Some(eagerness) = td.eagerness else {
            return;
        };
        if let Some(segment) = self.input.end_pause_after(wait_ms(eagerness, ending)) {
            self.on_vad_event(VadEvent::Ended(segment), &td).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use switchboard_models::stt::ENGLISH;

    #[test]
    fn sentences_and_questions_are_finished() {
        for t in [
            "What is the weather like in Paris today?",
            "Book a table for two at eight.",
            "Stop!",
            "I think so.",
            "What is it for?",
            "Where are you from?",
            "Could you tell me what it's for.",
            "Yes, I'd love to.",
            "That's fine.\"",
            "Hello?",
        ] {
            assert_eq!(judge(t, ENGLISH), Ending::Finished, "{t}");
        }
    }

    #[test]
    fn trailing_off_and_open_words_are_unfinished() {
        for t in [
            "I'd like to book a table for",
            "I'd like to book a table for.",
            "I'd like to book a table for...",
            "My name is, um",
            "Send it to the,",
            "I want the red one and",
            "Well…",
            "Two tickets to",
            "Let me think — ",
            "I’m",
            // Whisper's punctuation, heard on espeak-ng speech cut there.
            "Can you send the invoice to?",
            "I need to change my flight because.",
            "Please transfer me to the...",
            "I would like to order a large pizza with.",
            "Can I have the?",
        ] {
            assert_eq!(judge(t, ENGLISH), Ending::Unfinished, "{t}");
        }
    }

    #[test]
    fn no_end_punctuation_is_unsure_and_languages_without_words_use_punctuation_only() {
        assert_eq!(judge("book a table", ENGLISH), Ending::Unsure);
        assert_eq!(judge("", ENGLISH), Ending::Unsure);
        assert_eq!(judge("  ...  ", ENGLISH), Ending::Unsure);
        // No Swedish list is kept: English words mean nothing there.
        assert_eq!(judge("a table for.", "sv"), Ending::Finished);
        assert_eq!(judge("Jag vill boka ett bord för", "sv"), Ending::Unsure);
        assert_eq!(
            judge("Jag vill boka ett bord för,", "sv"),
            Ending::Unfinished
        );
    }

    #[test]
    fn other_languages_leave_sentences_open_on_their_own_words() {
        for (language, open) in [
            ("fr", "Je voudrais réserver une table pour."),
            ("fr", "J'appelle parce que."),
            ("fr", "Envoyez la facture à."),
            ("es", "Quiero reservar una mesa para."),
            ("es", "Mi número de cuenta es, eh"),
            ("es", "Llamo porque."),
            // Whisper base's, on espeak-ng's Spanish cut there.
            ("es", "necesito cambiar mi vuelo porque."),
            ("es", "Quiero ser varu a mesa para."),
            ("de", "Ich möchte einen Tisch für."),
            ("de", "Ich rufe an, weil."),
            ("it", "Vorrei prenotare un tavolo per."),
            ("it", "Mandi la fattura alla."),
            ("pt", "Eu queria reservar uma mesa para."),
            ("pt", "Meu voo mudou e."),
            ("nl", "Ik wil een tafel reserveren voor twee met."),
            ("nl", "Ik bel omdat."),
        ] {
            assert_eq!(
                judge(open, language),
                Ending::Unfinished,
                "{language}: {open}"
            );
        }
    }

    #[test]
    fn other_languages_end_sentences_on_words_that_look_open_elsewhere() {
        for (language, finished) in [
            // Pronouns, particles and words with accents.
            ("fr", "C'est pour elle."),
            ("fr", "Mais si !"),
            ("fr", "Jusqu'à quand ?"),
            ("fr", "Prends-le."),
            ("es", "¿Para qué?"),
            ("es", "Es para él."),
            ("es", "¡Para!"),
            ("es", "Sí, para mí."),
            ("de", "Ich komme mit."),
            ("de", "Das bin ich."),
            ("de", "Ich nehme die."),
            ("de", "Was ist denn?"),
            ("de", "Er sieht gut aus."),
            ("it", "È mio."),
            ("it", "Perché?"),
            ("pt", "É meu."),
            ("pt", "Gosto muito."),
            ("nl", "Ik weet het."),
            ("nl", "Waar kom je van?"),
            ("nl", "Hij belt op."),
            // English words mean nothing in German: "to" is not "zu".
            ("de", "Ich gehe zu."),
            ("de", "Das ist a."),
        ] {
            assert_eq!(
                judge(finished, language),
                Ending::Finished,
                "{language}: {finished}"
            );
        }
    }

    #[test]
    fn smart_turn_moves_the_transcripts_judgement_one_step_unless_words_leave_it_open() {
        let heard = |t: &str, p: f32| judge_heard(t, ENGLISH, Some(p));
        // Sounds complete: finished, with or without end punctuation.
        assert_eq!(heard("I think so.", 0.9), Ending::Finished);
        assert_eq!(heard("book a table for two", COMPLETE), Ending::Finished);
        // Sounds unfinished: a full stop waits as unsure, no end punctuation as unfinished.
        assert_eq!(heard("Could you hack weather?", 0.02), Ending::Unsure);
        assert_eq!(heard("My account where is", 0.01), Ending::Unfinished);
        // Not clear either way: the transcript decides.
        assert_eq!(heard("That's fine.", 0.43), Ending::Finished);
        assert_eq!(heard("My account where is", INCOMPLETE), Ending::Unsure);
        // A number read out sounds unfinished whole or cut: it waits as unsure, no longer.
        assert_eq!(heard("My account number is 4567", 0.01), Ending::Unsure);
        assert_eq!(
            heard("My phone number is 555-123-4567", 0.02),
            Ending::Unsure
        );
        assert_eq!(heard("It's on the 12th", 0.05), Ending::Unsure);
        assert_eq!(heard("The order number is 7742.", 0.01), Ending::Unsure);
        assert_eq!(heard("The code is one two", 0.01), Ending::Unsure);
        assert_eq!(
            heard("My zip code is nine oh two one-o", 0.01),
            Ending::Unsure
        );
        assert_eq!(
            judge_heard("Le code est quatre vingt", "fr", Some(0.01)),
            Ending::Unsure
        );
        // Numbers joined into one word, and ordinals.
        for (language, text) in [
            ("de", "Die Nummer ist dreiundzwanzig"),
            ("de", "Der Termin ist am einundzwanzigsten"),
            ("nl", "Mijn huisnummer is drieëntwintig"),
            ("it", "Il codice è centoventitré"),
            ("es", "Mi número es dieciséis"),
            ("en", "It's on the twenty-first"),
        ] {
            assert_eq!(
                judge_heard(text, language, Some(0.01)),
                Ending::Unsure,
                "{text}"
            );
        }
        // The German article is not the number "eins".
        assert_eq!(
            judge_heard("Ich hätte gern einen", "de", Some(0.01)),
            Ending::Unfinished
        );
        assert_eq!(heard("Room 4 please", 0.01), Ending::Unfinished);
        // A word that starts with a number qualifies what is still to come.
        assert_eq!(heard("Can I get a one-way", 0.01), Ending::Unfinished);
        assert_eq!(heard("It is a seventh-day", 0.01), Ending::Unfinished);
        assert_eq!(heard("Someone is here", 0.01), Ending::Unfinished);
        // A number word that is also a dangling word ("un": a, one) is judged as dangling.
        assert_eq!(
            judge_heard("Je voudrais un", "fr", Some(0.01)),
            Ending::Unfinished
        );
        // Words that leave the sentence open outweigh a falling voice.
        assert_eq!(
            heard("Can you send the invoice to?", 0.98),
            Ending::Unfinished
        );
        assert_eq!(heard("My name is, um", 0.9), Ending::Unfinished);
        // Without the model the words judge alone.
        for t in ["I think so.", "book a table", "Send it to the,"] {
            assert_eq!(judge_heard(t, ENGLISH, None), judge(t, ENGLISH), "{t}");
        }
    }

    #[test]
    fn each_eagerness_waits_longer_the_less_finished_a_turn_reads() {
        for e in [
            Eagerness::Low,
            Eagerness::Medium,
            Eagerness::High,
            Eagerness::Auto,
        ] {
            let [f, u, n] = [Ending::Finished, Ending::Unsure, Ending::Unfinished]
                .map(|ending| wait_ms(e, ending));
            assert!(f < u && u < n, "{e:?}");
        }
        assert_eq!(wait_ms(Eagerness::High, Ending::Unfinished), 2_000);
        assert_eq!(wait_ms(Eagerness::Auto, Ending::Unfinished), 4_000);
        assert_eq!(wait_ms(Eagerness::Low, Ending::Unfinished), 8_000);
        assert_eq!(
            wait_ms(Eagerness::Auto, Ending::Finished),
            wait_ms(Eagerness::Medium, Ending::Finished)
        );
    }

    proptest! {
        /// Any transcript is judged, the same with surrounding whitespace, and a trailing
        /// comma always leaves it open.
        #[test]
        fn any_text_is_judged(
            text in ".{0,80}",
            language in prop::sample::select(vec!["en", "fr", "es", "de", "it", "pt", "nl", "ja"]),
        ) {
            let ending = judge(&text, language);
            prop_assert_eq!(judge(&format!("  {text}\n"), language), ending);
            if text.chars().any(char::is_alphanumeric) {
                prop_assert_eq!(judge(&format!("{text},"), language), Ending::Unfinished);
            }
            // Smart Turn moves a judgement at most one step, and never past what the words say
            // is open.
            let rank = |e: Ending| e as i32;
            for p in [0.0, 0.09, 0.1, 0.49, 0.5, 1.0] {
                let heard = judge_heard(&text, language, Some(p));
                prop_assert!((rank(heard) - rank(ending)).abs() <= 1);
                if ending == Ending::Unfinished {
                    prop_assert_eq!(heard, Ending::Unfinished);
                }
            }
        }
    }
}

//! Whisper's repetition loops: the decoder, sure of itself, writes one phrase again and
//! again ("I am a man, I am a man, …") until its 224-token limit. It happens when the audio
//! is not in the language decoded: an English-only model hearing German or Portuguese, or a
//! multilingual one told the wrong language (BENCHMARKS.md "Repetition loops"). Whisper's own
//! remedy, decoding again at a higher temperature, is switched off here: on live audio a
//! second decode costs more than it gains. Instead the loop is stopped as it forms
//! ([`loop_at_end`] on the tokens decoded so far, from whisper.cpp's logits filter, which then
//! lets only end-of-text through) and the segment keeps one copy of the phrase
//! ([`Segment::without_loop`]).

use super::Segment;

/// The longest phrase, in tokens, whose repeats count as a loop.
const MAX_PHRASE_TOKENS: usize = 16;
/// A loop repeats its phrase at least this often in a row…
const MIN_COPIES: usize = 4;
/// …over at least this many tokens: a word said four times ("no, no, no, no") is speech.
const MIN_LOOP_TOKENS: usize = 24;

/// A loop at the end of a token sequence: its phrase's length in tokens, and how many times
/// in a row the sequence ends with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Loop {
    pub phrase: usize,
    pub copies: usize,
}

/// Whether `ids` end in a loop: the shortest phrase of at most [`MAX_PHRASE_TOKENS`] that
/// they end with [`MIN_COPIES`] times or more in a row, over [`MIN_LOOP_TOKENS`] or more.
pub(super) fn loop_at_end(ids: &[i32]) -> Option<Loop> {
    (1..=MAX_PHRASE_TOKENS.min(ids.len() / MIN_COPIES)).find_map(|phrase| {
        let last = &ids[ids.len() - phrase..];
        let copies = ids
            .rchunks_exact(phrase)
            .take_while(|chunk| *chunk == last)
            .count();
        (copies >= MIN_COPIES && copies * phrase >= MIN_LOOP_TOKENS)
            .then_some(Loop { phrase, copies })
    })
}

/// How many of `ids` are left once each loop at their end is cut to one copy of its phrase.
fn without_loops(ids: &[i32]) -> usize {
    let mut kept = ids.len();
    while let Some(found) = loop_at_end(&ids[..kept]) {
        kept -= found.phrase * (found.copies - 1);
    }
    kept
}

impl Segment {
    /// The segment with a loop at its end cut to one copy of the phrase, its text rebuilt from
    /// the tokens kept; `None` if only an annotation or nothing is left.
    pub(super) fn without_loop(mut self) -> Option<Self> {
        let ids: Vec<i32> = self.tokens.iter().map(|t| t.id).collect();
        let kept = without_loops(&ids);
        if kept == ids.len() {
            return Some(self);
        }
        self.tokens.truncate(kept);
        let bytes: Vec<u8> = self.tokens.iter().flat_map(|t| t.bytes.clone()).collect();
        let text = String::from_utf8_lossy(&bytes);
        let tokens = std::mem::take(&mut self.tokens);
        let mut kept = Segment::decoded(&text, 0, 0, self.no_speech_prob)?;
        kept.start_ms = self.start_ms;
        kept.end_ms = self.end_ms;
        kept.tokens = tokens;
        Some(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::Token;
    use proptest::prelude::*;

    fn segment(words: &[&str]) -> Segment {
        let tokens: Vec<Token> = words
            .iter()
            .map(|w| Token {
                id: w.bytes().map(i32::from).sum(),
                bytes: w.as_bytes().to_vec(),
                logprob: -0.1,
                span_ms: None,
            })
            .collect();
        let text: String = words.concat();
        Segment {
            start_ms: 100,
            end_ms: 2_000,
            text: text.trim().to_owned(),
            no_speech_prob: 0.01,
            tokens,
        }
    }

    #[test]
    fn a_phrase_repeated_to_the_end_is_a_loop() {
        let phrase = [1, 2, 3, 4, 5];
        let mut ids = vec![7, 8, 9];
        for _ in 0..6 {
            ids.extend(phrase);
        }
        assert_eq!(
            loop_at_end(&ids),
            Some(Loop {
                phrase: 5,
                copies: 6
            })
        );
        // Mid-phrase, the loop goes on (as the phrase's rotation)…
        ids.extend([1, 2]);
        assert_eq!(
            loop_at_end(&ids),
            Some(Loop {
                phrase: 5,
                copies: 6
            })
        );
        // …and a new word ends it.
        ids.push(6);
        assert_eq!(loop_at_end(&ids), None);
        // One word said over and over, long enough.
        assert_eq!(
            loop_at_end(&[3; 30]),
            Some(Loop {
                phrase: 1,
                copies: 30
            })
        );
    }

    #[test]
    fn speech_that_repeats_a_little_is_not_a_loop() {
        // "no, no, no, no": four copies, too few tokens.
        assert_eq!(loop_at_end(&[5, 6, 5, 6, 5, 6, 5, 6]), None);
        // Three copies of a long phrase.
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.extend(1..=10);
        }
        assert_eq!(loop_at_end(&ids), None);
        assert_eq!(loop_at_end(&[]), None);
    }

    #[test]
    fn a_looping_segment_keeps_what_came_before_and_one_copy() {
        let mut words = vec![" Can", " we", " go", "?"];
        for _ in 0..8 {
            words.extend([" I", " am", " a", " man", ","]);
        }
        let cut = segment(&words).without_loop().unwrap();
        assert_eq!(cut.text, "Can we go? I am a man,");
        assert_eq!(cut.tokens.len(), 9);
        assert_eq!((cut.start_ms, cut.end_ms), (100, 2_000));
        let speech = segment(&[" No", ",", " no", ",", " no", "."]);
        assert_eq!(speech.clone().without_loop(), Some(speech));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn a_loop_found_is_real_and_cutting_it_leaves_none(
            head in proptest::collection::vec(0i32..4, 0..40),
            phrase in proptest::collection::vec(0i32..4, 1..20),
            copies in 0usize..30,
        ) {
            let mut ids = head;
            for _ in 0..copies {
                ids.extend(&phrase);
            }
            if let Some(found) = loop_at_end(&ids) {
                prop_assert!(found.copies >= MIN_COPIES);
                prop_assert!(found.phrase * found.copies >= MIN_LOOP_TOKENS);
                let last = &ids[ids.len() - found.phrase..];
                for k in 1..=found.copies {
                    let end = ids.len() - (k - 1) * found.phrase;
                    prop_assert_eq!(&ids[end - found.phrase..end], last);
                }
                let kept = &ids[..without_loops(&ids)];
                prop_assert_eq!(loop_at_end(kept), None);
                prop_assert!(kept.len() < ids.len());
            } else {
                prop_assert_eq!(without_loops(&ids), ids.len());
                prop_assert!(
                    phrase.len() > MAX_PHRASE_TOKENS
                        || copies < MIN_COPIES
                        || phrase.len() * copies < MIN_LOOP_TOKENS,
                    "missed {} copies of {:?}", copies, phrase
                );
            }
        }
    }
}

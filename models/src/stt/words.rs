//! A segment's words with their times (`timestamp_granularities[]=word`), from its timed
//! tokens ([`TranscribeOptions::word_times`](super::TranscribeOptions::word_times)).
//!
//! Whisper's byte-level BPE begins a word with a token whose text starts with a space; the
//! tokens up to the next such token make one word, which spans its first token's start to
//! its last token's end. Words are trimmed of punctuation, as OpenAI's are ("Paris?" is
//! "Paris"), and what is only punctuation is no word.
//!
//! The token times are fitted to the audio first (`word_fit.rs`).

use std::ops::Range;

use super::{Segment, Token};

/// One word and when it was said, in ms on the caller's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Segment {
    /// The segment's words; empty when its tokens were not timed.
    pub fn words(&self) -> Vec<Word> {
        if self.tokens.iter().any(|t| t.span_ms.is_none()) {
            return Vec::new();
        }
        let mut words = Vec::new();
        for range in word_tokens(&self.tokens) {
            let tokens = &self.tokens[range];
            if let Some(span) = span_of(tokens.iter().filter_map(|t| t.span_ms)) {
                push_word(&mut words, &spelling(tokens), span);
            }
        }
        words
    }
}

/// The tokens of each word, in order: a token whose text starts with a space begins one.
pub(super) fn word_tokens(tokens: &[Token]) -> Vec<Range<usize>> {
    let mut words: Vec<Range<usize>> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match words.last_mut() {
            Some(word) if token.bytes.first() != Some(&b' ') => word.end = i + 1,
            _ => words.push(i..i + 1),
        }
    }
    words
}

/// What `tokens` spell together (a character may be split between two of them).
pub(super) fn spelling(tokens: &[Token]) -> String {
    let bytes: Vec<u8> = tokens
        .iter()
        .flat_map(|t| t.bytes.iter().copied())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// From the earliest start to the latest end of `spans` (never ending before it starts).
pub(super) fn span_of(spans: impl Iterator<Item = (u64, u64)> + Clone) -> Option<(u64, u64)> {
    let start = spans.clone().map(|(s, _)| s).min()?;
    let end = spans.map(|(_, e)| e).max()?;
    Some((start, end.max(start)))
}

/// The word `spelt`, if it holds more than punctuation.
fn push_word(words: &mut Vec<Word>, spelt: &str, (start_ms, end_ms): (u64, u64)) {
    let text = spelt.trim_matches(|c: char| !c.is_alphanumeric());
    if !text.is_empty() {
        words.push(Word {
            text: text.to_owned(),
            start_ms,
            end_ms,
        });
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A segment of `pieces`: each token's text, start and end.
    pub(in crate::stt) fn timed(pieces: &[(&[u8], u64, u64)]) -> Segment {
        let tokens: Vec<Token> = pieces
            .iter()
            .map(|(bytes, start, end)| Token {
                id: 1,
                bytes: bytes.to_vec(),
                logprob: -0.1,
                span_ms: Some((*start, *end)),
            })
            .collect();
        Segment {
            start_ms: 0,
            end_ms: 3_000,
            text: String::new(),
            no_speech_prob: 0.0,
            tokens,
        }
    }

    pub(in crate::stt) fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
        }
    }

    #[test]
    fn tokens_join_into_words_at_spaces_without_punctuation() {
        let s = timed(&[
            (b" What", 0, 200),
            (b" is", 200, 320),
            (b" the", 320, 400),
            (b" weath", 400, 600),
            (b"er", 600, 700),
            (b" like", 700, 900),
            (b" in", 900, 1000),
            (b" Paris", 1000, 1400),
            (b"?", 1400, 1420),
        ]);
        assert_eq!(
            s.words(),
            [
                word("What", 0, 200),
                word("is", 200, 320),
                word("the", 320, 400),
                word("weather", 400, 700),
                word("like", 700, 900),
                word("in", 900, 1000),
                word("Paris", 1000, 1420),
            ]
        );
    }

    #[test]
    fn a_character_split_over_tokens_is_whole_and_punctuation_alone_is_no_word() {
        // "é" is 0xC3 0xA9, decoded as two tokens; " -" is punctuation alone.
        let s = timed(&[
            (b" caf", 0, 300),
            (&[0xC3], 300, 350),
            (&[0xA9], 350, 400),
            (b" -", 400, 450),
            (b" don't", 500, 800),
            (b".", 800, 810),
        ]);
        assert_eq!(s.words(), [word("café", 0, 400), word("don't", 500, 810)]);
    }

    #[test]
    fn untimed_tokens_give_no_words() {
        let mut s = timed(&[(b" Hello", 0, 300)]);
        s.tokens[0].span_ms = None;
        assert!(s.words().is_empty());
    }

    proptest! {
        /// Whatever the tokens, each word is non-empty, has no punctuation at its edges and
        /// ends no earlier than it starts; and the words, in order, are the segment's text's
        /// words (punctuation aside).
        #[test]
        fn words_spell_the_text(
            pieces in proptest::collection::vec(
                ("[ ]?[a-zA-Z,.?!'-]{1,6}", 0u64..5_000, 0u64..500), 0..30)
        ) {
            let owned: Vec<(Vec<u8>, u64, u64)> = pieces
                .iter()
                .map(|(t, s, d)| (t.as_bytes().to_vec(), *s, s + d))
                .collect();
            let borrowed: Vec<(&[u8], u64, u64)> =
                owned.iter().map(|(b, s, e)| (b.as_slice(), *s, *e)).collect();
            let s = timed(&borrowed);
            let words = s.words();
            for w in &words {
                prop_assert!(!w.text.is_empty());
                prop_assert!(w.text.starts_with(char::is_alphanumeric));
                prop_assert!(w.text.ends_with(char::is_alphanumeric));
                prop_assert!(w.end_ms >= w.start_ms);
            }
            let text: String = pieces.iter().map(|(t, _, _)| t.as_str()).collect();
            let expected: Vec<&str> = text
                .split(' ')
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                .filter(|w| !w.is_empty())
                .collect();
            let got: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            prop_assert_eq!(got, expected);
        }
    }
}

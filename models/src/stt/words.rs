//! A segment's words with their times (`timestamp_granularities[]=word`), from its timed
//! tokens ([`TranscribeOptions::word_times`](super::TranscribeOptions::word_times)).
//!
//! Whisper's byte-level BPE begins a word with a token whose text starts with a space; the
//! tokens up to the next such token make one word, which spans its first token's start to
//! its last token's end. Words are trimmed of punctuation, as OpenAI's are ("Paris?" is
//! "Paris"), and what is only punctuation is no word.
//!
//! whisper.cpp times tokens by a heuristic inside their segment, and a segment after a pause
//! often starts where the last one ended: spoken after 1.5 s of silence, "Please book me a
//! table" came back with "Please" at 2.0-2.95 s when it was said at 3.8 s. [`fit_to_speech`]
//! moves each segment's token times onto the audible part of the segment's span.

use super::{STT_SAMPLE_RATE, Segment};

/// Frames of this many ms are judged loud or quiet.
const FRAME_MS: u64 = 10;
/// A frame is speech when its RMS is at least this share of the loudest frame's (-26 dB).
const SPEECH_SHARE: f32 = 0.05;

/// Map each segment's token times linearly from the segment's span onto its audible part
/// (its first to its last loud frame), so words leave the silence at the segment's edges.
/// `audio` is what the segments were decoded from, starting `offset_ms` into the caller's.
pub(super) fn fit_to_speech(segments: &mut [Segment], audio: &[f32], offset_ms: u64) {
    let frame = (STT_SAMPLE_RATE as u64 * FRAME_MS / 1000) as usize;
    let loudness: Vec<f32> = audio.chunks(frame).map(crate::audio::pcm::rms).collect();
    let loudest = loudness.iter().copied().fold(0.0, f32::max);
    if loudest <= 0.0 {
        return;
    }
    let loud = |i: &usize| loudness[*i] >= loudest * SPEECH_SHARE;
    let frame_at = |ms: u64| (ms.saturating_sub(offset_ms) / FRAME_MS) as usize;
    for segment in segments {
        let (from, to) = (segment.start_ms, segment.end_ms);
        let frames = frame_at(from)..frame_at(to).min(loudness.len());
        let (Some(first), Some(last)) = (frames.clone().find(loud), frames.rev().find(loud)) else {
            continue;
        };
        let speech_from = offset_ms + first as u64 * FRAME_MS;
        let speech_to = offset_ms + (last as u64 + 1) * FRAME_MS;
        if to <= from || speech_to <= speech_from {
            continue;
        }
        let scale = (speech_to - speech_from) as f64 / (to - from) as f64;
        let map =
            |ms: u64| speech_from + ((ms.clamp(from, to) - from) as f64 * scale).round() as u64;
        for token in &mut segment.tokens {
            token.span_ms = token.span_ms.map(|(start, end)| (map(start), map(end)));
        }
    }
}

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
        let mut words = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut span: Option<(u64, u64)> = None;
        for token in &self.tokens {
            let Some((start, end)) = token.span_ms else {
                continue;
            };
            if token.bytes.first() == Some(&b' ') {
                push_word(&mut words, &mut bytes, span.take());
            }
            bytes.extend_from_slice(&token.bytes);
            span = Some(match span {
                Some((first, last)) => (first, last.max(end)),
                None => (start, end.max(start)),
            });
        }
        push_word(&mut words, &mut bytes, span);
        words
    }
}

/// The word spelt by `bytes` (emptied), if it holds more than punctuation.
fn push_word(words: &mut Vec<Word>, bytes: &mut Vec<u8>, span: Option<(u64, u64)>) {
    let spelt = String::from_utf8_lossy(bytes).into_owned();
    bytes.clear();
    let text = spelt.trim_matches(|c: char| !c.is_alphanumeric());
    if let (false, Some((start_ms, end_ms))) = (text.is_empty(), span) {
        words.push(Word {
            text: text.to_owned(),
            start_ms,
            end_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::Token;
    use proptest::prelude::*;

    fn timed(pieces: &[(&[u8], u64, u64)]) -> Segment {
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

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
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

    #[test]
    fn token_times_move_out_of_the_silence_at_a_segments_edges() {
        // 6 s: silence, then a tone from 3.8 s to 5.7 s, then silence.
        let rate = STT_SAMPLE_RATE as usize;
        let audio: Vec<f32> = (0..6 * rate)
            .map(|i| match i * 10 / rate {
                38..57 => (i as f32 * 0.05).sin() * 0.3,
                _ => 0.0,
            })
            .collect();
        // whisper.cpp's guess: the segment from 2 s to 6 s, its words spread evenly over it.
        let mut s = timed(&[(b" Please", 2_000, 3_000), (b" book", 3_000, 6_000)]);
        (s.start_ms, s.end_ms) = (2_000, 6_000);
        let mut segments = [s];
        fit_to_speech(&mut segments, &audio, 0);
        assert_eq!(
            segments[0].words(),
            [word("Please", 3_800, 4_275), word("book", 4_275, 5_700)]
        );
        // The same audio 10 s into a long upload, as a piece decoded on its own.
        let mut s = timed(&[(b" Please", 12_000, 13_000), (b" book", 13_000, 16_000)]);
        (s.start_ms, s.end_ms) = (12_000, 16_000);
        let mut segments = [s];
        fit_to_speech(&mut segments, &audio, 10_000);
        assert_eq!(segments[0].words()[0], word("Please", 13_800, 14_275));
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

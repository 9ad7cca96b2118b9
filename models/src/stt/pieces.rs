//! Cutting long audio at its quietest moments, so that a long upload is transcribed a piece at
//! a time and a live caller never waits for more than one piece; each piece is prompted with
//! the last words of the text so far (`piece_prompt`).
//!
//! No voice detector is needed: within the window where a cut is allowed, the cut goes where a
//! sliding 200 ms window holds the least energy, which is the longest, deepest pause there (a
//! breath, or the silence between sentences), or, in continuous speech, the softest sound.

use std::ops::Range;

/// Energy is summed over frames of this many samples (20 ms at 16 kHz)...
const FRAME: usize = 320;
/// ...and compared over this many frames (200 ms): a pause must be long, not one soft frame.
const WINDOW_FRAMES: usize = 10;
/// How much of the text so far conditions the next piece (Whisper's prompt holds 224 tokens).
const CARRIED_PROMPT_CHARS: usize = 200;

/// Consecutive ranges covering `samples`, each at most `max_len` long and, except when the whole
/// audio is shorter, at least `max_len / 2`; cuts fall at the quietest point allowed.
pub fn cut_at_pauses(samples: &[f32], max_len: usize) -> Vec<Range<usize>> {
    let max_len = max_len.max(2 * FRAME);
    let min_len = max_len / 2;
    let mut pieces = Vec::new();
    let mut start = 0;
    while samples.len() - start > max_len {
        // The rest must stay at least `min_len` long, which `start + min_len` allows, since
        // more than `max_len = 2 * min_len` (or one more) is left.
        let lo = start + min_len;
        let hi = (start + max_len).min(samples.len() - min_len);
        let cut = quietest(samples, lo, hi);
        pieces.push(start..cut);
        start = cut;
    }
    if start < samples.len() || pieces.is_empty() {
        pieces.push(start..samples.len());
    }
    pieces
}

/// The frame boundary in `lo..=hi` at the middle of the quietest 200 ms around it.
fn quietest(samples: &[f32], lo: usize, hi: usize) -> usize {
    let half = WINDOW_FRAMES * FRAME / 2;
    let energy = |from: usize, to: usize| -> f64 {
        samples[from.min(samples.len())..to.min(samples.len())]
            .iter()
            .map(|s| f64::from(*s) * f64::from(*s))
            .sum()
    };
    let mut best = (f64::INFINITY, hi);
    let mut at = lo;
    while at <= hi {
        let e = energy(at.saturating_sub(half), at + half);
        // Ties go to the later cut: fewer, longer pieces.
        if e <= best.0 {
            best = (e, at);
        }
        at += FRAME;
    }
    best.1
}

/// The caller's prompt, then the last words of the text so far (whole words, at most
/// [`CARRIED_PROMPT_CHARS`]).
pub(super) fn piece_prompt(prompt: Option<&str>, so_far: &str) -> Option<String> {
    let mut start = so_far.len().saturating_sub(CARRIED_PROMPT_CHARS);
    while !so_far.is_char_boundary(start) {
        start += 1;
    }
    let mut tail = &so_far[start..];
    // Cut inside a word: drop its end. Cut just after a space: the tail starts with a word.
    if start > 0 && !so_far[..start].ends_with(char::is_whitespace) {
        tail = tail.split_once(' ').map_or("", |(_, rest)| rest);
    }
    let parts: Vec<&str> = [prompt.unwrap_or(""), tail]
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tone(len: usize) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 0.07).sin() * 0.5).collect()
    }

    #[test]
    fn short_audio_is_one_piece() {
        assert_eq!(cut_at_pauses(&tone(1000), 16_000), vec![0..1000]);
        assert_eq!(cut_at_pauses(&[], 16_000), vec![0..0]);
    }

    #[test]
    fn cuts_fall_in_the_pauses() {
        // 3 s of sound, 0.5 s of silence, 3 s, 0.5 s, 3 s: with 5 s pieces, each cut is in a
        // silence.
        let rate = 16_000;
        let mut audio = tone(3 * rate);
        let first_gap = audio.len()..audio.len() + rate / 2;
        audio.extend(vec![0.0; rate / 2]);
        audio.extend(tone(3 * rate));
        let second_gap = audio.len()..audio.len() + rate / 2;
        audio.extend(vec![0.0; rate / 2]);
        audio.extend(tone(3 * rate));
        let pieces = cut_at_pauses(&audio, 5 * rate);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert!(first_gap.contains(&pieces[0].end), "{pieces:?}");
        assert!(second_gap.contains(&pieces[1].end), "{pieces:?}");
    }

    proptest! {
        #[test]
        fn pieces_cover_the_audio_in_order_within_bounds(
            audio in prop::collection::vec(-1.0f32..1.0, 0..40_000),
            max_len in 640usize..12_000,
        ) {
            let pieces = cut_at_pauses(&audio, max_len);
            prop_assert_eq!(pieces[0].start, 0);
            prop_assert_eq!(pieces.last().unwrap().end, audio.len());
            for pair in pieces.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
            for p in &pieces {
                prop_assert!(p.len() <= max_len, "{:?} longer than {}", p, max_len);
                if pieces.len() > 1 {
                    prop_assert!(p.len() >= max_len / 2, "{:?} shorter than half of {}", p, max_len);
                }
            }
        }
    }

    #[test]
    fn a_piece_is_prompted_with_the_callers_prompt_and_the_last_words_so_far() {
        assert_eq!(piece_prompt(None, ""), None);
        assert_eq!(piece_prompt(Some(" "), "  "), None);
        assert_eq!(piece_prompt(Some("Acme"), "").as_deref(), Some("Acme"));
        assert_eq!(
            piece_prompt(Some("Acme"), "we met at noon.").as_deref(),
            Some("Acme we met at noon.")
        );
        let long = "word ".repeat(100) + "é".repeat(30).as_str() + " last";
        let tail = piece_prompt(None, &long).unwrap();
        assert!(
            tail.len() <= CARRIED_PROMPT_CHARS && tail.ends_with(" last"),
            "{tail}"
        );
        assert!(
            tail.starts_with("word ") || tail.starts_with('é'),
            "whole words: {tail}"
        );
        // The cut lands just after a space: the word after it is whole, so it stays.
        let exact = "x".repeat(10) + " " + &"abcd ".repeat(CARRIED_PROMPT_CHARS / 5);
        let at_space = piece_prompt(None, &exact).unwrap();
        assert_eq!(at_space, exact[11..].trim(), "no word lost");
        // The cut lands inside a word: that word goes.
        let inside = "x".repeat(10) + &"abcd ".repeat(CARRIED_PROMPT_CHARS / 5);
        let mid_word = piece_prompt(None, &inside).unwrap();
        assert!(mid_word.starts_with("abcd ") && mid_word.len() < CARRIED_PROMPT_CHARS);
    }
}

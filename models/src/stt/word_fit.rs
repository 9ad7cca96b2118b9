//! Token times fitted to the speech they came from, before they become words (`words.rs`).
//!
//! whisper.cpp times tokens by a heuristic inside their segment, which does not see pauses:
//! a segment after one often starts where the last one ended ("Please book me a table",
//! said at 3.8 s after 1.5 s of silence, came back with "Please" at 2.0 s), and two
//! sentences 1.5 s apart decoded as one segment had the second's first words in the pause.
//!
//! So each segment's audible stretches are found (10 ms frames at least -26 dB below the
//! clip's loudest, split by quiet of 300 ms or more) and its words are dealt out to them in
//! order, each stretch taking as many letters as its share of the speaking time (a steady
//! speaking rate); inside a stretch, whisper.cpp's times for those words are stretched
//! linearly over it, keeping its spacing between them.

use std::ops::Range;

use super::words::{span_of, spelling, word_tokens};
use super::{STT_SAMPLE_RATE, Segment};

/// Frames of this many ms are judged loud or quiet.
const FRAME_MS: u64 = 10;
/// A frame is speech when its RMS is at least this share of the loudest frame's (-26 dB).
const SPEECH_SHARE: f32 = 0.05;
/// Quiet this long (in frames) between loud frames is a pause between stretches of speech.
const PAUSE_FRAMES: usize = 30;

/// Fit every segment's token times to the speech in `audio`, what the segments were decoded
/// from, which starts `offset_ms` into what the caller sent.
pub(super) fn fit_to_speech(segments: &mut [Segment], audio: &[f32], offset_ms: u64) {
    let frame = (STT_SAMPLE_RATE as u64 * FRAME_MS / 1000) as usize;
    let loudness: Vec<f32> = audio.chunks(frame).map(crate::audio::pcm::rms).collect();
    let loudest = loudness.iter().copied().fold(0.0, f32::max);
    if loudest <= 0.0 {
        return;
    }
    let loud: Vec<bool> = loudness
        .iter()
        .map(|&l| l >= loudest * SPEECH_SHARE)
        .collect();
    let frame_at = |ms: u64| ((ms.saturating_sub(offset_ms) / FRAME_MS) as usize).min(loud.len());
    let ms_at = |frame: usize| offset_ms + frame as u64 * FRAME_MS;
    for segment in segments {
        let frames = frame_at(segment.start_ms)..frame_at(segment.end_ms);
        let stretches: Vec<(u64, u64)> = stretches(&loud, frames)
            .into_iter()
            .map(|r| (ms_at(r.start), ms_at(r.end)))
            .collect();
        fit_segment(segment, &stretches);
    }
}

/// The runs of loud frames in `frames`, split where `PAUSE_FRAMES` or more are quiet.
fn stretches(loud: &[bool], frames: Range<usize>) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for i in frames.filter(|&i| loud[i]) {
        match runs.last_mut() {
            Some(run) if i - run.end < PAUSE_FRAMES => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

/// Deal the segment's words out to `stretches` (ms, in order) and stretch each one's share of
/// whisper.cpp's times over it.
fn fit_segment(segment: &mut Segment, stretches: &[(u64, u64)]) {
    let speaking: u64 = stretches.iter().map(|(from, to)| to - from).sum();
    let words = word_tokens(&segment.tokens);
    let letters: Vec<u64> = words
        .iter()
        .map(|w| {
            spelling(&segment.tokens[w.clone()])
                .chars()
                .filter(|c| c.is_alphanumeric())
                .count() as u64
        })
        .collect();
    let all_letters: u64 = letters.iter().sum();
    if speaking == 0 || all_letters == 0 {
        return;
    }
    // Each word goes to the stretch in whose share of the speaking time its middle letter falls.
    let mut said_before = 0;
    let mut stretch_of = Vec::with_capacity(words.len());
    for n in &letters {
        let middle = (said_before * 2 + n) as f64 / (all_letters * 2) as f64;
        said_before += n;
        let mut elapsed = 0;
        let mut chosen = stretches.len() - 1;
        for (i, (from, to)) in stretches.iter().enumerate() {
            elapsed += to - from;
            if middle * speaking as f64 <= elapsed as f64 {
                chosen = i;
                break;
            }
        }
        stretch_of.push(chosen);
    }
    for (i, &(from, to)) in stretches.iter().enumerate() {
        let tokens: Vec<usize> = words
            .iter()
            .zip(&stretch_of)
            .filter(|(_, s)| **s == i)
            .flat_map(|(w, _)| w.clone())
            .collect();
        let spans = tokens.iter().filter_map(|&t| segment.tokens[t].span_ms);
        let Some((first, last)) = span_of(spans) else {
            continue;
        };
        let scale = (to - from) as f64 / (last - first).max(1) as f64;
        let map = |ms: u64| from + ((ms.clamp(first, last) - first) as f64 * scale).round() as u64;
        for t in tokens {
            let token = &mut segment.tokens[t];
            token.span_ms = token.span_ms.map(|(start, end)| (map(start), map(end)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::words::tests::{timed, word};

    /// `secs` of audio, a tone over the `loud` (from, to) 10 ms frames, silence elsewhere.
    fn audio(secs: usize, loud: &[(usize, usize)]) -> Vec<f32> {
        let rate = STT_SAMPLE_RATE as usize;
        let tone = |frame: usize| loud.iter().any(|&(from, to)| (from..to).contains(&frame));
        (0..secs * rate)
            .map(|i| match tone(i * 100 / rate) {
                true => (i as f32 * 0.05).sin() * 0.3,
                false => 0.0,
            })
            .collect()
    }

    #[test]
    fn token_times_move_out_of_the_silence_at_a_segments_edges() {
        let audio = audio(6, &[(380, 570)]);
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

    #[test]
    fn words_are_dealt_to_the_stretches_of_speech_around_a_pause_inside_a_segment() {
        // Two phrases of 1.2 s, 1.5 s apart, in one segment; whisper.cpp put the second
        // phrase's first word in the pause.
        let audio = audio(5, &[(20, 140), (290, 410)]);
        let mut s = timed(&[
            (b" Your", 200, 400),
            (b" table", 400, 800),
            (b" is", 800, 1_000),
            (b" ready.", 1_000, 1_400),
            (b" Your", 1_500, 1_700),
            (b" table", 1_700, 2_600),
            (b" is", 2_600, 3_200),
            (b" ready.", 3_200, 4_100),
        ]);
        (s.start_ms, s.end_ms) = (0, 5_000);
        let mut segments = [s];
        fit_to_speech(&mut segments, &audio, 0);
        let words = segments[0].words();
        let starts: Vec<u64> = words.iter().map(|w| w.start_ms).collect();
        assert_eq!(starts, [200, 400, 800, 1_000, 2_900, 2_992, 3_408, 3_685]);
        assert!(words[..4].iter().all(|w| w.end_ms <= 1_400), "{words:?}");
    }

    #[test]
    fn silence_and_a_segment_beyond_the_audio_leave_the_times_alone() {
        let mut s = timed(&[(b" Hello", 100, 400)]);
        (s.start_ms, s.end_ms) = (0, 500);
        let mut segments = [s.clone()];
        fit_to_speech(&mut segments, &[0.0; 16_000], 0);
        assert_eq!(segments[0], s);
        let mut late = s.clone();
        (late.start_ms, late.end_ms) = (5_000, 6_000);
        let mut segments = [late.clone()];
        fit_to_speech(&mut segments, &audio(1, &[(10, 50)]), 0);
        assert_eq!(segments[0], late);
    }
}

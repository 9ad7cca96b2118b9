//! Shared helpers for the benchmarks: percentiles, test speech, the models directory.

use std::path::PathBuf;
use std::time::Duration;

/// p50 and p95 of some durations, in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.95))
}

pub fn models_dir() -> PathBuf {
    switchboard_models::provision::default_models_dir()
}

/// Word errors of `hypothesis` against `reference` (lower-case, punctuation ignored) and the
/// reference's word count.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

/// The STT benchmarks' utterances: (label, text), about 1, 3 and 10 s when spoken.
pub const STT_UTTERANCES: [(&str, &str); 3] = [
    ("1 s", "Yes, please."),
    (
        "3 s",
        "I would like to book a table for four people tonight at seven.",
    ),
    (
        "10 s",
        "I would like to book a table for four people tonight at seven, preferably by the window, \
         and one of us is vegetarian so please let the kitchen know. We will come by car, so we \
         also need to know where to park.",
    ),
];

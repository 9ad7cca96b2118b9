//! Helpers for tests that use the real models: where they are, test speech, word error rate.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use switchboard_models::audio::{MonoAudio, wav};
use switchboard_models::provision::default_models_dir;

/// The provisioned models directory. Tests fail (never skip) when models are missing:
/// `make test` fetches them first.
pub fn models_dir() -> PathBuf {
    let dir = default_models_dir();
    assert!(
        dir.join("manifest.json").is_file(),
        "no models in {} — run `switchboard models fetch` (make test does)",
        dir.display()
    );
    dir
}

/// Speech from the espeak-ng command with `voice` (e.g. "en-us", "en-gb+m3"), as mono audio.
pub fn espeak(text: &str, voice: &str, words_per_minute: u32) -> MonoAudio {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("speech.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &words_per_minute.to_string(), "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (make test installs it)");
    assert!(status.success(), "espeak-ng failed");
    wav::read_file(&path).expect("espeak-ng wrote a WAV")
}

/// Lower-case words without punctuation, with numbers spelled out.
pub fn normalize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['-', '—'], " ")
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .replace(',', "")
        })
        .filter(|w| !w.is_empty())
        .flat_map(|w| match w.parse::<u64>() {
            Ok(n) => spell(n).split(' ').map(str::to_owned).collect::<Vec<_>>(),
            Err(_) => vec![w],
        })
        .collect()
}

fn spell(n: u64) -> String {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    match n {
        0..=19 => ONES[n as usize].to_owned(),
        20..=99 if n.is_multiple_of(10) => TENS[(n / 10) as usize].to_owned(),
        20..=99 => format!("{} {}", TENS[(n / 10) as usize], ONES[(n % 10) as usize]),
        100..=999 if n.is_multiple_of(100) => format!("{} hundred", ONES[(n / 100) as usize]),
        100..=999 => format!("{} hundred {}", ONES[(n / 100) as usize], spell(n % 100)),
        1000..=999_999 if n.is_multiple_of(1000) => format!("{} thousand", spell(n / 1000)),
        1000..=999_999 => format!("{} thousand {}", spell(n / 1000), spell(n % 1000)),
        _ => n.to_string(),
    }
}

/// Word-level edit distance and reference length.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (normalize(reference), normalize(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

#[test]
fn wer_helper_counts_edits_and_spells_numbers() {
    assert_eq!(
        word_errors("Table for 4, please.", "table for four please"),
        (0, 4)
    );
    assert_eq!(word_errors("a b c d", "a x c"), (2, 4));
    assert_eq!(
        normalize("It's 1,250 dollars"),
        vec![
            "it's", "one", "thousand", "two", "hundred", "fifty", "dollars"
        ]
    );
}

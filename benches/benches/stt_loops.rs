//! Whisper's repetition loops: clips on which the decoder, told the wrong language, writes
//! one phrase until its 224-token limit ("I am a man, I am a man, …"), and clips it decodes
//! well, for comparison. For each: time to the transcript (p50 of `RUNS` after a warm-up),
//! tokens decoded, whether a loop is left in the text, and the text's start. An English-only
//! model hearing German or Portuguese is what a call to the default `tiny.en` in another
//! language does; `base` told the wrong language is a session naming it wrongly. espeak-ng
//! speech. Prints Markdown rows for BENCHMARKS.md ("Repetition loops").
//!
//! Run: `cargo bench -p switchboard-benches --bench stt_loops` with `make test-models` done.

use std::time::Instant;

use switchboard_benches::{espeak_16k, models_dir, percentiles};
use switchboard_models::provision::catalog::whisper_model;
use switchboard_models::stt::{SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine};

const RUNS: usize = 3;

/// (model, espeak voice, sentence, language decoded)
const CLIPS: &[(&str, &str, &str, &str)] = &[
    (
        "tiny.en-q8_0",
        "de",
        "Können wir bitte auf Deutsch weitermachen? Mein Englisch ist nicht so gut.",
        "en",
    ),
    (
        "tiny.en-q8_0",
        "pt",
        "Gostaria de reservar uma mesa para duas pessoas esta noite.",
        "en",
    ),
    (
        "tiny.en-q8_0",
        "en-us",
        "Actually, could we continue in English please? My German is not very good.",
        "en",
    ),
    (
        "base-q8_0",
        "es",
        "Quisiera reservar una mesa para dos personas esta noche.",
        "de",
    ),
    (
        "base-q8_0",
        "nl",
        "Ik wil graag vanavond een tafel voor twee personen reserveren.",
        "es",
    ),
    (
        "base-q8_0",
        "de",
        "Können wir bitte auf Deutsch weitermachen? Mein Englisch ist nicht so gut.",
        "de",
    ),
];

fn main() {
    println!("| model | speech | decoded as | audio | p50 | tokens | loop left | text |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut loaded: Option<(&str, WhisperEngine)> = None;
    for &(model, voice, text, language) in CLIPS {
        if loaded.as_ref().is_none_or(|(name, _)| *name != model) {
            let config = WhisperConfig::new(whisper_model(&models_dir(), model));
            loaded = Some((
                model,
                WhisperEngine::load(config).expect("model (run `make test-models`)"),
            ));
        }
        let engine = &loaded.as_ref().expect("loaded").1;
        let audio = espeak_16k(voice, text);
        let transcribe = || {
            let opts = TranscribeOptions {
                language: Some(language.to_owned()),
                ..Default::default()
            };
            engine
                .transcribe(audio.samples.clone(), opts)
                .wait()
                .expect("transcription")
        };
        let mut heard = transcribe();
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            heard = transcribe();
            times.push(started.elapsed());
        }
        let words: Vec<&str> = heard.text.split_whitespace().collect();
        let start: String = words.iter().take(12).copied().collect::<Vec<_>>().join(" ");
        println!(
            "| {model} | {} | {language} | {:.1} s | {:.0} ms | {} | {} | {start}{} |",
            &voice[..2],
            audio.duration_secs(),
            percentiles(&mut times).0,
            heard.tokens().count(),
            if looping(&words) { "yes" } else { "no" },
            if words.len() > 12 { " …" } else { "" },
        );
    }
}

/// Whether some run of 1-6 words repeats at least four times in a row.
fn looping(words: &[&str]) -> bool {
    (1..=6).any(|n| {
        words.windows(4 * n).any(|w| {
            let first = &w[..n];
            w.chunks(n).all(|c| c == first)
        })
    })
}

//! Real models end to end: Piper speaks, Whisper transcribes; espeak-ng voices too.
//! Word error rates are printed (`--nocapture`) and bounded: <= 10% for our own TTS,
//! <= 20% for espeak-ng's robotic voices.

mod common;

use std::sync::OnceLock;

use common::{espeak, models_dir, word_errors};
use switchboard_models::audio::{MonoAudio, rates};
use switchboard_models::provision::catalog::{PIPER_JOE, WHISPER_DEFAULT, whisper_model};
use switchboard_models::stt::{SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine};
use switchboard_models::tts::{PiperConfig, PiperEngine, SpeakOptions, TextToSpeech};

const SENTENCES: &[&str] = &[
    "Hello, your table for four is ready.",
    "Please follow me to the patio.",
    "The weather tomorrow will be sunny with a high of 25 degrees.",
    "I have booked your flight to Paris for Monday morning.",
    "Your order number is 42 and it will arrive on Friday.",
    "Would you like to hear the specials of the day?",
    "The meeting has been moved to three in the afternoon.",
    "Thank you for calling, have a wonderful evening.",
];

fn stt() -> &'static WhisperEngine {
    static E: OnceLock<WhisperEngine> = OnceLock::new();
    E.get_or_init(|| {
        WhisperEngine::load(WhisperConfig::new(whisper_model(
            &models_dir(),
            WHISPER_DEFAULT,
        )))
        .expect("whisper loads")
    })
}

fn tts() -> &'static PiperEngine {
    static E: OnceLock<PiperEngine> = OnceLock::new();
    E.get_or_init(|| {
        let dir = models_dir();
        PiperEngine::load(PiperConfig::new(&dir, dir.join(PIPER_JOE))).expect("piper loads")
    })
}

fn speak(text: &str) -> MonoAudio {
    let mut stream = tts().synthesize(text, SpeakOptions::default());
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next_blocking() {
        samples.extend(chunk.expect("synthesis succeeds").samples);
    }
    MonoAudio::new(samples, tts().sample_rate())
}

fn transcribe(audio: &MonoAudio) -> String {
    let audio = audio.to_rate(rates::SPEECH_MODELS).expect("resample");
    stt()
        .transcribe(audio.samples, TranscribeOptions::default())
        .wait()
        .expect("transcribes")
        .text
}

fn wer_report(label: &str, pairs: &[(String, String)]) -> f64 {
    let (mut errors, mut words) = (0, 0);
    for (reference, hypothesis) in pairs {
        let (e, n) = word_errors(reference, hypothesis);
        println!("{label}: {e}/{n} | {reference} | {hypothesis}");
        errors += e;
        words += n;
    }
    let wer = errors as f64 / words as f64;
    println!("{label}: WER {:.1}% ({errors}/{words} words)", wer * 100.0);
    wer
}

#[test]
fn piper_speech_transcribes_back_within_10_percent_wer() {
    let pairs: Vec<_> = SENTENCES
        .iter()
        .map(|s| (s.to_string(), transcribe(&speak(s))))
        .collect();
    let wer = wer_report("piper->whisper", &pairs);
    assert!(wer <= 0.10, "WER {wer:.3} above 10%");
}

#[test]
fn espeak_voices_transcribe_within_20_percent_wer() {
    let mut pairs = Vec::new();
    for voice in ["en-us", "en-gb", "en-us+f3", "en-us+m3"] {
        for s in &SENTENCES[..4] {
            pairs.push((s.to_string(), transcribe(&espeak(s, voice, 150))));
        }
    }
    let wer = wer_report("espeak->whisper", &pairs);
    assert!(wer <= 0.20, "WER {wer:.3} above 20%");
}

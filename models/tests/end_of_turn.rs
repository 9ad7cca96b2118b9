//! Smart Turn on espeak-ng speech: whole sentences sound complete, phrases cut where a
//! speaker would go on do not.

mod common;

use common::{espeak, models_dir};
use switchboard_models::audio::rates;
use switchboard_models::end_of_turn::{EndOfTurnError, SmartTurn};
use switchboard_models::provision::catalog::SMART_TURN;

const RATE: usize = rates::SPEECH_MODELS as usize;

/// `text` as the gateway hands it to the model at a pause: 300 ms of silence, the speech cut
/// at its last audible sample, then the ~200 ms of the pause heard so far.
fn at_a_pause(text: &str) -> Vec<f32> {
    let speech = espeak(text, "en-us", 175)
        .to_rate(rates::SPEECH_MODELS)
        .expect("resample")
        .samples;
    let last = speech
        .iter()
        .rposition(|s| s.abs() > 0.01)
        .expect("audible speech");
    let mut audio = vec![0.0; RATE * 3 / 10];
    audio.extend_from_slice(&speech[..=last]);
    audio.extend(std::iter::repeat_n(0.0, RATE / 5));
    audio
}

#[test]
fn whole_sentences_sound_complete_and_cut_phrases_do_not() {
    let model = SmartTurn::load(&models_dir(), &models_dir().join(SMART_TURN), 1).unwrap();
    for whole in [
        "Please read me my last message.",
        "My meeting moved to Friday.",
        "I need to change my flight.",
    ] {
        let p = model.complete_probability(&at_a_pause(whole)).unwrap();
        assert!(p >= 0.5, "{whole}: {p}");
    }
    for cut in [
        "I need to change my flight because",
        "My name is, um",
        "My account number is, um",
    ] {
        let p = model.complete_probability(&at_a_pause(cut)).unwrap();
        assert!(p < 0.5, "{cut}: {p}");
    }
    // Silence and a long turn are heard too (the last 8 s of it).
    let p = model.complete_probability(&[]).unwrap();
    assert!((0.0..=1.0).contains(&p), "{p}");
    let mut long = at_a_pause("Good morning, I would like to book a table for four people.");
    long.extend(at_a_pause(
        "We will come by car. I need to change my flight because",
    ));
    let p = model.complete_probability(&long).unwrap();
    assert!(p < 0.5, "long turn: {p}");
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let dir = models_dir();
    let err = SmartTurn::load(&dir, &dir.join("turn/missing.onnx"), 1).unwrap_err();
    assert!(matches!(err, EndOfTurnError::Onnx(_)), "{err}");
    assert!(err.to_string().contains("models fetch"), "{err}");
}

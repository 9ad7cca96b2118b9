//! `audio.input.transcription` (beta: `input_audio_transcription`): how the caller's speech
//! is transcribed. Whisper takes a prompt; `prompt` and `keywords` become it. The model the
//! client names is not ours to choose (the gateway runs one), so it is accepted and the
//! session reports the model that transcribes. An English-only model runs in English and
//! refuses another language rather than transcribe it wrongly; a multilingual one runs in the
//! `language` named or, with none (rendered as null), detects the caller's
//! (`pipeline/src/call/language.rs`).

use serde_json::{Map, Value, json};
use switchboard_models::stt::{DETECT_LANGUAGE, ENGLISH, Token, whisper_language};

use super::fields::{Invalid, invalid};

/// The longest prompt (prompt and keywords together) taken. Whisper keeps the last 224
/// tokens of a prompt; this is about four times that in English characters.
pub const MAX_PROMPT_CHARS: usize = 4_000;

/// What the client asked of the transcription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptionSettings {
    pub prompt: String,
    pub keywords: Vec<String>,
    /// The Whisper language code named. `None`: none named (English with an English-only
    /// model, which stores a named English as `None` too; detected with a multilingual one).
    pub language: Option<String>,
}

/// The model that transcribes the session: what a `language` is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SttModel<'a> {
    pub name: &'a str,
    pub multilingual: bool,
}

impl TranscriptionSettings {
    /// Apply an update: fields present replace, fields absent are kept; `null` resets all.
    pub fn apply(&self, v: &Value, param: &str, model: SttModel) -> Result<Self, Invalid> {
        let m = match v {
            Value::Null => return Ok(Self::default()),
            Value::Object(m) => m,
            _ => return Err(invalid(param, format!("{param} must be an object or null"))),
        };
        let mut next = self.clone();
        if let Some(p) = m.get("prompt") {
            next.prompt = match p {
                Value::Null => String::new(),
                Value::String(s) => s.trim().to_owned(),
                _ => {
                    return Err(invalid(
                        &format!("{param}.prompt"),
                        "prompt must be a string",
                    ));
                }
            };
        }
        if let Some(k) = m.get("keywords") {
            next.keywords = keywords(k, &format!("{param}.keywords"))?;
        }
        if let Some(l) = m.get("language") {
            next.language = language(l, &format!("{param}.language"), model)?;
        }
        check_languages(m, param, model)?;
        if next
            .whisper_prompt()
            .is_some_and(|p| p.chars().count() > MAX_PROMPT_CHARS)
        {
            return Err(invalid(
                &format!("{param}.prompt"),
                format!("the prompt and keywords are at most {MAX_PROMPT_CHARS} characters"),
            ));
        }
        Ok(next)
    }

    /// The prompt Whisper is given: the client's prompt, then its keywords.
    pub fn whisper_prompt(&self) -> Option<String> {
        let keywords = self.keywords.join(", ");
        let prompt = match (self.prompt.is_empty(), keywords.is_empty()) {
            (true, true) => return None,
            (false, true) => self.prompt.clone(),
            (true, false) => format!("{keywords}."),
            (false, false) => format!("{} {keywords}.", self.prompt),
        };
        Some(prompt)
    }

    /// The object rendered in `session.created|updated`: `language` null while a
    /// multilingual model detects it.
    pub fn to_json(&self, model: SttModel) -> Value {
        let language = match &self.language {
            Some(l) => json!(l),
            None if model.multilingual => Value::Null,
            None => json!(ENGLISH),
        };
        json!({"model": model.name, "language": language, "prompt": self.prompt,
               "keywords": self.keywords})
    }
}

fn keywords(v: &Value, param: &str) -> Result<Vec<String>, Invalid> {
    let list = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => {
            return Err(invalid(
                param,
                format!("{param} must be an array of strings"),
            ));
        }
    };
    list.iter()
        .map(|k| {
            k.as_str()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(param, format!("{param} must hold non-empty strings")))
        })
        .collect()
}

/// Tokens as OpenAI's transcription `logprobs`: `[{"token", "logprob", "bytes"}]`. A token
/// that holds part of a character shows U+FFFD in `token`; `bytes` has it exactly.
pub fn logprobs_json<'a>(tokens: impl IntoIterator<Item = &'a Token>) -> Value {
    tokens
        .into_iter()
        .map(|t| {
            json!({"token": String::from_utf8_lossy(&t.bytes), "logprob": t.logprob, "bytes": t.bytes})
        })
        .collect()
}

/// Whether an ISO-639-1 code (or a locale such as `en-GB`) names English, the language
/// Whisper is run in unless a multilingual model is told otherwise.
pub fn is_english(code: &str) -> bool {
    whisper_language(code) == Some(ENGLISH)
}

/// The Whisper language code to transcribe a client's `language` in, or why not: a language
/// Whisper does not know, or one other than English for an English-only `model`.
pub fn stt_language(code: &str, multilingual: bool, model: &str) -> Result<&'static str, String> {
    match whisper_language(code) {
        None => Err(format!(
            "'{code}' is not a language Whisper knows (use an ISO-639-1 code)"
        )),
        Some(l) if l == ENGLISH || multilingual => Ok(l),
        Some(_) => Err(format!(
            "the speech-to-text model {model} transcribes English ('en') only, not '{code}' \
             (serve with --stt-model base for other languages)"
        )),
    }
}

/// The language to transcribe a file in (uploads, `transcribe`): the one `named`, checked as
/// [`stt_language`] does; with none named, [`DETECT_LANGUAGE`] for a multilingual model (as
/// OpenAI's whisper-1 detects) and `None` (English) for an English-only one.
pub fn file_language(
    named: Option<&str>,
    multilingual: bool,
    model: &str,
) -> Result<Option<&'static str>, String> {
    match named {
        Some(code) => stt_language(code, multilingual, model).map(Some),
        None => Ok(multilingual.then_some(DETECT_LANGUAGE)),
    }
}

/// Whether `model` can translate into English (`/v1/audio/translations`, `transcribe
/// --translate`): Whisper's translate task needs a multilingual model.
pub fn check_translation(multilingual: bool, model: &str) -> Result<(), String> {
    match multilingual {
        true => Ok(()),
        false => Err(format!(
            "the speech-to-text model {model} transcribes English only and cannot translate \
             (serve with --stt-model base to translate)"
        )),
    }
}

/// `language`: a Whisper language the model knows; `None` for null or "" (and for English
/// with an English-only model, which has no other).
fn language(v: &Value, param: &str, model: SttModel) -> Result<Option<String>, Invalid> {
    let code = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s,
        _ => return Err(invalid(param, format!("{param} must be a string"))),
    };
    match stt_language(code, model.multilingual, model.name) {
        Ok(ENGLISH) if !model.multilingual => Ok(None),
        Ok(l) => Ok(Some(l.to_owned())),
        Err(message) => Err(invalid(param, message)),
    }
}

/// `languages` (a list of what the caller may speak) must name languages Whisper knows. An
/// English-only model hears English alone, so there the list must include `"en"`; a
/// multilingual one detects the caller's language when `language` names none.
fn check_languages(m: &Map<String, Value>, param: &str, model: SttModel) -> Result<(), Invalid> {
    let param = format!("{param}.languages");
    let Some(ls) = m.get("languages").filter(|l| !l.is_null()) else {
        return Ok(());
    };
    let codes = ls
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
        .ok_or_else(|| invalid(&param, "languages must be an array of strings"))?;
    // Any language Whisper knows passes here; English-only models are checked below.
    for code in &codes {
        stt_language(code, true, model.name).map_err(|message| invalid(&param, message))?;
    }
    if !model.multilingual && !codes.is_empty() && !codes.iter().any(|c| is_english(c)) {
        return Err(invalid(
            &param,
            format!(
                "the speech-to-text model {} transcribes English ('en') only: languages must \
                 include 'en' (serve with --stt-model base for other languages)",
                model.name
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "session.audio.input.transcription";
    const TINY: SttModel = SttModel {
        name: "whisper-tiny.en",
        multilingual: false,
    };
    const BASE: SttModel = SttModel {
        name: "whisper-base",
        multilingual: true,
    };

    #[test]
    fn prompt_and_keywords_become_whispers_prompt() {
        let t = TranscriptionSettings::default();
        assert_eq!(t.whisper_prompt(), None);
        let t = t
            .apply(
                &json!({"model": "whisper-1", "prompt": " Orders and refunds. "}),
                P,
                TINY,
            )
            .unwrap();
        assert_eq!(t.whisper_prompt().as_deref(), Some("Orders and refunds."));
        let t = t
            .apply(&json!({"keywords": ["Switchboard", "Piper"]}), P, TINY)
            .unwrap();
        assert_eq!(
            t.whisper_prompt().as_deref(),
            Some("Orders and refunds. Switchboard, Piper.")
        );
        let t = t.apply(&json!({"prompt": null}), P, TINY).unwrap();
        assert_eq!(t.whisper_prompt().as_deref(), Some("Switchboard, Piper."));
        assert_eq!(
            t.apply(&Value::Null, P, TINY).unwrap(),
            TranscriptionSettings::default()
        );
    }

    #[test]
    fn logprobs_keep_each_tokens_bytes() {
        let tokens = [
            Token {
                id: 814,
                bytes: b" Hello".to_vec(),
                logprob: -0.25,
                span_ms: None,
            },
            // The first half of "é" (0xC3 0xA9).
            Token {
                id: 2,
                bytes: vec![0xC3],
                logprob: -1.5,
                span_ms: None,
            },
        ];
        let v = logprobs_json(&tokens);
        assert_eq!(
            v,
            json!([{"token": " Hello", "logprob": -0.25, "bytes": [32, 72, 101, 108, 108, 111]},
                   {"token": "\u{FFFD}", "logprob": -1.5, "bytes": [195]}])
        );
        assert_eq!(logprobs_json(&[]), json!([]));
    }

    #[test]
    fn other_languages_and_bad_shapes_are_refused_with_their_param() {
        let t = TranscriptionSettings::default();
        for (body, param) in [
            (
                json!({"language": "de"}),
                "session.audio.input.transcription.language",
            ),
            (
                json!({"languages": ["fr", "de"]}),
                "session.audio.input.transcription.languages",
            ),
            (
                json!({"languages": "en"}),
                "session.audio.input.transcription.languages",
            ),
            (
                json!({"prompt": 3}),
                "session.audio.input.transcription.prompt",
            ),
            (
                json!({"keywords": ["ok", ""]}),
                "session.audio.input.transcription.keywords",
            ),
            (
                json!({"keywords": "ok"}),
                "session.audio.input.transcription.keywords",
            ),
            (
                json!({"prompt": "x".repeat(MAX_PROMPT_CHARS + 1)}),
                "session.audio.input.transcription.prompt",
            ),
            (json!("whisper-1"), "session.audio.input.transcription"),
        ] {
            let e = t.apply(&body, P, TINY).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
        assert!(is_english("EN") && is_english("en-GB") && is_english("en_US"));
        assert!(!is_english("de") && !is_english("eng") && !is_english(""));
        assert_eq!(stt_language("de-AT", true, "whisper-base"), Ok("de"));
        assert_eq!(stt_language("en_GB", false, "whisper-tiny.en"), Ok("en"));
        let e = stt_language("de", false, "whisper-tiny.en").unwrap_err();
        assert!(
            e.contains("whisper-tiny.en") && e.contains("--stt-model base"),
            "{e}"
        );
        assert!(stt_language("klingon", true, "whisper-base").is_err());
        assert_eq!(
            file_language(None, true, "whisper-base"),
            Ok(Some(DETECT_LANGUAGE))
        );
        assert_eq!(file_language(None, false, "whisper-tiny.en"), Ok(None));
        assert_eq!(
            file_language(Some("de"), true, "whisper-base"),
            Ok(Some("de"))
        );
        assert!(file_language(Some("de"), false, "whisper-tiny.en").is_err());
        // A multilingual model takes another language, and English as named: with none it
        // detects (rendered null). An English-only one stores English as the default.
        let de = t.apply(&json!({"language": "de-DE"}), P, BASE).unwrap();
        assert_eq!(de.language.as_deref(), Some("de"));
        assert_eq!(de.to_json(BASE)["language"], "de");
        let en = de.apply(&json!({"language": "en"}), P, BASE).unwrap();
        assert_eq!(en.language.as_deref(), Some("en"));
        let detect = en.apply(&json!({"language": null}), P, BASE).unwrap();
        assert_eq!(detect, TranscriptionSettings::default());
        assert!(detect.to_json(BASE)["language"].is_null());
        assert_eq!(
            TranscriptionSettings::default().to_json(TINY)["language"],
            "en"
        );
        let tiny_en = t.apply(&json!({"language": "en-US"}), P, TINY).unwrap();
        assert_eq!(tiny_en, TranscriptionSettings::default());
        let e = t.apply(&json!({"language": "xx"}), P, BASE).unwrap_err();
        assert_eq!(
            e.param.as_deref(),
            Some("session.audio.input.transcription.language")
        );
        for fine in [
            json!({"language": "en"}),
            json!({"language": "en-GB"}),
            json!({"languages": ["fr", "en"]}),
            json!({"language": ""}),
        ] {
            assert!(t.apply(&fine, P, TINY).is_ok(), "{fine}");
        }
        // A multilingual model detects: any languages Whisper knows, English or not.
        assert!(
            t.apply(&json!({"languages": ["fr", "de"]}), P, BASE)
                .is_ok()
        );
        let e = t
            .apply(&json!({"languages": ["fr", "xx"]}), P, BASE)
            .unwrap_err();
        assert_eq!(
            e.param.as_deref(),
            Some("session.audio.input.transcription.languages")
        );
        assert!(e.message.contains("'xx'"), "{}", e.message);
        let e = t.apply(&json!({"languages": ["fr"]}), P, TINY).unwrap_err();
        assert!(e.message.contains("whisper-tiny.en"), "{}", e.message);
        assert!(t.apply(&json!({"languages": [1]}), P, BASE).is_err());
    }
}

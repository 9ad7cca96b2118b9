//! `session.update` parsing and the rendered session: both shapes, each field, refusals
//! by param, and a property test: any update is applied whole or refused with its param.

use super::*;
use switchboard_pipeline::{Eagerness, NoiseReduction};

fn session() -> RealtimeSession {
    RealtimeSession::new("sess_1".into(), "m".into(), SessionConfig::default())
}

#[test]
fn ga_update_applies_and_renders_back() {
    let s = session()
        .apply(&json!({
            "type": "realtime",
            "instructions": "Be terse.",
            "output_modalities": ["text"],
            "audio": {"input": {"format": {"type": "audio/pcmu"},
                                "turn_detection": {"type": "server_vad", "silence_duration_ms": 300,
                                                   "early_transcription_ms": 0}},
                      "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "joe"}},
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
            "unknown_future_field": 1
        }))
        .unwrap();
    assert_eq!(s.config.input_rate, 8_000);
    assert!(!s.config.audio_output);
    assert_eq!(s.config.turn_detection.unwrap().silence_duration_ms, 300);
    assert_eq!(s.config.turn_detection.unwrap().prefix_padding_ms, 300);
    assert_eq!(s.config.turn_detection.unwrap().early_transcription_ms, 0);
    let v = s.to_json();
    assert_eq!(
        v["audio"]["input"]["turn_detection"]["early_transcription_ms"],
        0
    );
    assert_eq!(v["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(v["tools"][0]["name"], "lookup");
    assert_eq!(v["output_modalities"], json!(["text"]));
}

#[test]
fn semantic_vad_keeps_its_eagerness_until_told_otherwise() {
    let td = |s: &RealtimeSession| s.config.turn_detection.unwrap();
    let s = session()
        .apply(&json!({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}))
        .unwrap();
    assert_eq!(td(&s).eagerness, Some(Eagerness::Auto));
    let v = s.to_json()["audio"]["input"]["turn_detection"].clone();
    assert_eq!(
        (v["type"].as_str(), v["eagerness"].as_str()),
        (Some("semantic_vad"), Some("auto"))
    );
    assert!(v.get("silence_duration_ms").is_none(), "{v}");
    // An update without a type keeps semantic_vad; one naming server_vad leaves it.
    let s = s
        .apply(&json!({"turn_detection": {"eagerness": "high", "create_response": false}}))
        .unwrap();
    assert_eq!(td(&s).eagerness, Some(Eagerness::High));
    assert!(!td(&s).create_response);
    let s = s
        .apply(&json!({"turn_detection": {"interrupt_response": false}}))
        .unwrap();
    assert_eq!(td(&s).eagerness, Some(Eagerness::High));
    let s = s
        .apply(&json!({"turn_detection": {"type": "server_vad"}}))
        .unwrap();
    assert_eq!(td(&s).eagerness, None);
    assert_eq!(
        s.to_json()["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );
    for (bad, param) in [
        (
            json!({"type": "server_vad", "eagerness": "low"}),
            "eagerness",
        ),
        (
            json!({"type": "semantic_vad", "eagerness": "eager"}),
            "eagerness",
        ),
        (json!({"type": "semantic_vad", "eagerness": 2}), "eagerness"),
        (json!({"type": "smart_vad"}), "type"),
        (json!({"type": 1}), "type"),
    ] {
        let err = session()
            .apply(&json!({"turn_detection": bad}))
            .unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some(format!("session.turn_detection.{param}").as_str())
        );
    }
}

#[test]
fn beta_update_and_null_turn_detection() {
    let s = session()
        .apply(&json!({"modalities": ["text", "audio"], "input_audio_format": "g711_alaw", "turn_detection": null}))
        .unwrap();
    assert_eq!(s.input_format, AudioFormat::Pcma);
    assert_eq!(s.config.turn_detection, None);
    assert!(s.config.audio_output);
}

#[test]
fn bad_fields_name_their_path_and_change_nothing() {
    let err = session()
        .apply(
            &json!({"instructions": "x", "audio": {"input": {"turn_detection": {"threshold": 3}}}}),
        )
        .unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("session.audio.input.turn_detection.threshold")
    );
    let err = session()
        .apply(&json!({"audio": {"output": {"format": {"type": "audio/flac"}}}}))
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("session.audio.output.format"));
    assert!(session().apply(&json!("nope")).is_err());
}

#[test]
fn a_transcription_session_has_its_own_shape_and_prompt() {
    let s = session()
        .apply(
            &json!({"type": "transcription", "audio": {"input": {"transcription":
            {"model": "gpt-4o-transcribe", "prompt": "Names: Ada.", "keywords": ["Lovelace"]}}}}),
        )
        .unwrap();
    assert!(s.config.transcription_only);
    assert_eq!(
        s.config.transcription_prompt.as_deref(),
        Some("Names: Ada. Lovelace.")
    );
    let v = s.to_json();
    assert_eq!(v["type"], "transcription");
    assert_eq!(v["object"], "realtime.transcription_session");
    assert!(v.get("instructions").is_none() && v["audio"].get("output").is_none());
    let t = &v["audio"]["input"]["transcription"];
    assert_eq!(
        (t["prompt"].as_str(), t["model"].as_str()),
        (Some("Names: Ada."), Some("whisper"))
    );
    assert_eq!(
        s.apply(&v).unwrap(),
        s,
        "re-applying the rendered session changes nothing"
    );
    let back = s.apply(&json!({"type": "realtime"})).unwrap();
    assert!(!back.config.transcription_only);
    assert_eq!(
        back.to_json()["audio"]["input"]["transcription"]["keywords"][0],
        "Lovelace"
    );
    let beta = session()
        .apply(&json!({"input_audio_transcription": {"model": "whisper-1", "prompt": "Acme"}}))
        .unwrap();
    assert_eq!(beta.config.transcription_prompt.as_deref(), Some("Acme"));
    let e = session()
        .apply(&json!({"type": "translation"}))
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("session.type"));
}

#[test]
fn a_multilingual_model_takes_the_sessions_language() {
    let body = json!({"audio": {"input": {"transcription": {"language": "fr"}}}});
    let e = session().apply(&body).unwrap_err();
    assert_eq!(
        e.param.as_deref(),
        Some("session.audio.input.transcription.language")
    );
    let base = session().transcribed_by("whisper-base", true);
    let fr = base.apply(&body).unwrap();
    assert_eq!(fr.config.transcription_language.as_deref(), Some("fr"));
    assert_eq!(
        fr.to_json()["audio"]["input"]["transcription"]["language"],
        "fr"
    );
    assert_eq!(fr.apply(&fr.to_json()).unwrap(), fr);
    let back = fr
        .apply(&json!({"input_audio_transcription": {"language": "en"}}))
        .unwrap();
    assert_eq!(back.config.transcription_language.as_deref(), Some("en"));
    // None named: the caller's language is detected, and rendered as null.
    let detect = back
        .apply(&json!({"input_audio_transcription": {"language": null}}))
        .unwrap();
    assert_eq!(detect.config.transcription_language, None);
    let rendered = detect.to_json();
    assert!(rendered["audio"]["input"]["transcription"]["language"].is_null());
    assert_eq!(detect.apply(&rendered).unwrap(), detect);
}

#[test]
fn noise_reduction_turns_on_reports_and_turns_off() {
    let on = session()
        .apply(&json!({"audio": {"input": {"noise_reduction": {"type": "far_field"}}}}))
        .unwrap();
    assert_eq!(on.config.noise_reduction, Some(NoiseReduction::FarField));
    assert_eq!(
        on.to_json()["audio"]["input"]["noise_reduction"]["type"],
        "far_field"
    );
    let off = on
        .apply(&json!({"audio": {"input": {"noise_reduction": null}}}))
        .unwrap();
    assert_eq!(off.config.noise_reduction, None);
    assert!(off.to_json()["audio"]["input"]["noise_reduction"].is_null());
    let beta = session()
        .apply(&json!({"input_audio_noise_reduction": {"type": "near_field"}}))
        .unwrap();
    assert_eq!(beta.config.noise_reduction, Some(NoiseReduction::NearField));
    let e = session()
        .apply(&json!({"audio": {"input": {"noise_reduction": {"type": "loud"}}}}))
        .unwrap_err();
    assert_eq!(
        e.param.as_deref(),
        Some("session.audio.input.noise_reduction.type")
    );
}

#[test]
fn include_asks_for_logprobs_and_refuses_anything_else() {
    let on = session()
        .apply(&json!({"include": ["item.input_audio_transcription.logprobs"]}))
        .unwrap();
    assert!(on.transcript_logprobs);
    assert_eq!(on.to_json()["include"][0], INCLUDE_LOGPROBS);
    let t = on.apply(&json!({"type": "transcription"})).unwrap();
    assert_eq!(
        t.to_json()["include"][0],
        INCLUDE_LOGPROBS,
        "kept across types"
    );
    assert!(
        !on.apply(&json!({"include": null}))
            .unwrap()
            .transcript_logprobs
    );
    assert!(
        !on.apply(&json!({"include": []}))
            .unwrap()
            .transcript_logprobs
    );
    for bad in [
        json!(["logprobs"]),
        json!("item.input_audio_transcription.logprobs"),
        json!([1]),
    ] {
        let e = session().apply(&json!({"include": bad})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.include"), "{bad}");
    }
}

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(vec![
            "audio/pcm",
            "audio/pcmu",
            "pcm16",
            "server_vad",
            "semantic_vad",
            "high",
            "inf",
            "audio",
            "text",
            "auto",
            "realtime",
            "transcription",
            "en",
            "de",
            "near_field",
            "far_field",
            "item.input_audio_transcription.logprobs",
            ""
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop::sample::select(vec![
            "type",
            "rate",
            "format",
            "input",
            "output",
            "audio",
            "turn_detection",
            "threshold",
            "silence_duration_ms",
            "prefix_padding_ms",
            "eagerness",
            "tools",
            "tool_choice",
            "name",
            "modalities",
            "output_modalities",
            "voice",
            "speed",
            "max_output_tokens",
            "instructions",
            "create_response",
            "input_audio_format",
            "transcription",
            "input_audio_transcription",
            "prompt",
            "keywords",
            "language",
            "languages",
            "noise_reduction",
            "input_audio_noise_reduction",
            "include",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn any_update_is_applied_whole_or_refused_with_a_param(v in json_value()) {
        let before = session();
        match before.apply(&v) {
            Ok(next) => {
                // What was accepted renders, and rendering then re-applying changes nothing.
                let again = next.apply(&next.to_json()).unwrap();
                proptest::prop_assert_eq!(again, next);
            }
            Err(e) => proptest::prop_assert!(e.param.is_some() && !e.message.is_empty()),
        }
    }
}

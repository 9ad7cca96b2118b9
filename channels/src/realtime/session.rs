//! The Realtime session object: parsing `session.update` (GA and beta shapes) onto the
//! pipeline's [`SessionConfig`], and rendering it back for `session.created|updated`.
//!
//! Updates are partial: fields not present keep their value. Unknown fields are ignored
//! (newer clients send more than we know); known fields with a wrong type or value are
//! refused with the path of the field as `param`, and nothing of that update is applied.

use serde_json::{Map, Value, json};
use switchboard_pipeline::SessionConfig;
use switchboard_pipeline::llm::ToolChoice;

use super::fields::{
    INCLUDE_LOGPROBS, Invalid, get_f32, get_str, invalid, parse_include, parse_modalities,
    parse_noise_reduction, parse_turn_detection,
};
pub use super::fields::{
    format_json, parse_format, parse_max_tokens, parse_tool_choice, parse_tools,
};
use super::transcription::{SttModel, TranscriptionSettings};
use crate::audio_format::AudioFormat;

/// What a Realtime connection has agreed with its client.
#[derive(Debug, Clone, PartialEq)]
pub struct RealtimeSession {
    pub id: String,
    pub model: String,
    pub config: SessionConfig,
    pub input_format: AudioFormat,
    pub output_format: AudioFormat,
    /// Set when audio travels outside the events (WebRTC's media track) at this fixed rate:
    /// the audio formats of `session.update` are then kept for display and do not change it.
    pub media_rate: Option<u32>,
    /// The speech-to-text model that transcribes the input (`audio.input.transcription`).
    pub transcription_model: String,
    /// Whether that model knows languages other than English.
    pub multilingual_stt: bool,
    /// The client's prompt and keywords for that model.
    pub transcription: TranscriptionSettings,
    /// `include: ["item.input_audio_transcription.logprobs"]`: transcripts carry their
    /// tokens' log probabilities.
    pub transcript_logprobs: bool,
}

impl RealtimeSession {
    pub fn new(id: String, model: String, config: SessionConfig) -> Self {
        let mut s = Self {
            id,
            model,
            config,
            input_format: AudioFormat::REALTIME_DEFAULT,
            output_format: AudioFormat::REALTIME_DEFAULT,
            media_rate: None,
            transcription_model: "whisper".into(),
            multilingual_stt: false,
            transcription: TranscriptionSettings::default(),
            transcript_logprobs: false,
        };
        s.sync_rates();
        s
    }

    /// A session whose input `model` transcribes (`multilingual`: it knows more than English).
    pub fn transcribed_by(mut self, model: &str, multilingual: bool) -> Self {
        self.transcription_model = model.to_owned();
        self.multilingual_stt = multilingual;
        self
    }

    /// A session whose audio travels on a media track at `rate` (WebRTC).
    pub fn with_media_rate(mut self, rate: u32) -> Self {
        self.media_rate = Some(rate);
        self.sync_rates();
        self
    }

    fn sync_rates(&mut self) {
        self.config.input_rate = self.media_rate.unwrap_or(self.input_format.rate());
        self.config.output_rate = self.media_rate.unwrap_or(self.output_format.rate());
    }

    /// Apply a `session.update` body. All or nothing.
    pub fn apply(&self, v: &Value) -> Result<RealtimeSession, Invalid> {
        let Value::Object(m) = v else {
            return Err(invalid("session", "session must be an object"));
        };
        let mut next = self.clone();
        let empty = Map::new();
        let audio = m.get("audio").and_then(Value::as_object).unwrap_or(&empty);
        let input = audio
            .get("input")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let output = audio
            .get("output")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if let Some(t) = m.get("type").and_then(Value::as_str) {
            next.config.transcription_only = match t {
                "realtime" => false,
                "transcription" => true,
                _ => {
                    return Err(invalid(
                        "session.type",
                        format!("unsupported session type '{t}': 'realtime' or 'transcription'"),
                    ));
                }
            };
        }
        let stt = SttModel {
            name: &self.transcription_model,
            multilingual: self.multilingual_stt,
        };
        if let Some(x) = input.get("transcription") {
            next.transcription =
                self.transcription
                    .apply(x, "session.audio.input.transcription", stt)?;
        } else if let Some(x) = m.get("input_audio_transcription") {
            next.transcription =
                self.transcription
                    .apply(x, "session.input_audio_transcription", stt)?;
        }
        next.config.transcription_prompt = next.transcription.whisper_prompt();
        next.config.transcription_language = next.transcription.language.clone();
        if let Some(x) = m.get("include") {
            next.transcript_logprobs = parse_include(x, "session.include")?;
        }
        if let Some(x) = m.get("model") {
            next.model = get_str(x, "session.model")?.to_owned();
        }
        if let Some(x) = m.get("instructions") {
            next.config.instructions = get_str(x, "session.instructions")?.to_owned();
        }
        if let Some(x) = m.get("output_modalities") {
            next.config.audio_output = parse_modalities(x, "session.output_modalities")?;
        } else if let Some(x) = m.get("modalities") {
            next.config.audio_output = parse_modalities(x, "session.modalities")?;
        }
        if let Some(x) = input.get("format") {
            next.input_format = parse_format(x, "session.audio.input.format")?;
        } else if let Some(x) = m.get("input_audio_format") {
            next.input_format = parse_format(x, "session.input_audio_format")?;
        }
        if let Some(x) = output.get("format") {
            next.output_format = parse_format(x, "session.audio.output.format")?;
        } else if let Some(x) = m.get("output_audio_format") {
            next.output_format = parse_format(x, "session.output_audio_format")?;
        }
        if let Some(x) = input.get("noise_reduction") {
            next.config.noise_reduction =
                parse_noise_reduction(x, "session.audio.input.noise_reduction")?;
        } else if let Some(x) = m.get("input_audio_noise_reduction") {
            next.config.noise_reduction =
                parse_noise_reduction(x, "session.input_audio_noise_reduction")?;
        }
        if let Some(x) = input.get("turn_detection") {
            next.config.turn_detection = parse_turn_detection(
                x,
                self.config.turn_detection,
                "session.audio.input.turn_detection",
            )?;
        } else if let Some(x) = m.get("turn_detection") {
            next.config.turn_detection =
                parse_turn_detection(x, self.config.turn_detection, "session.turn_detection")?;
        }
        if let Some(x) = output.get("voice").or_else(|| m.get("voice")) {
            next.config.voice = get_str(x, "session.audio.output.voice")?.to_owned();
        }
        if let Some(x) = output.get("speed").or_else(|| m.get("speed")) {
            next.config.speed = get_f32(x, "session.audio.output.speed", 0.25..=4.0)?;
        }
        if let Some(x) = m.get("tools") {
            next.config.tools = parse_tools(x, "session.tools")?;
        }
        if let Some(x) = m.get("tool_choice") {
            next.config.tool_choice = parse_tool_choice(x, "session.tool_choice")?;
        }
        if let Some(x) = m.get("temperature") {
            next.config.temperature = Some(get_f32(x, "session.temperature", 0.0..=2.0)?);
        }
        if let Some(x) = m
            .get("max_output_tokens")
            .or_else(|| m.get("max_response_output_tokens"))
        {
            next.config.max_output_tokens = parse_max_tokens(x, "session.max_output_tokens")?;
        }
        next.sync_rates();
        Ok(next)
    }

    /// The session object in the GA shape.
    pub fn to_json(&self) -> Value {
        let c = &self.config;
        let td = match c.turn_detection {
            None => Value::Null,
            Some(td) => {
                let mut v = json!({
                    "type": "server_vad",
                    "threshold": td.threshold,
                    "prefix_padding_ms": td.prefix_padding_ms,
                    "silence_duration_ms": td.silence_duration_ms,
                    "create_response": td.create_response,
                    "interrupt_response": td.interrupt_response,
                    "idle_timeout_ms": td.idle_timeout_ms,
                    "min_interrupt_ms": td.min_interrupt_ms,
                    "early_transcription_ms": td.early_ms(),
                });
                if let Some(e) = td.eagerness {
                    // Its pauses come from the judgement, not from a set silence.
                    v["type"] = json!("semantic_vad");
                    v["eagerness"] = json!(e.as_str());
                    v.as_object_mut().map(|o| o.remove("silence_duration_ms"));
                }
                v
            }
        };
        let tools: Vec<Value> = c
            .tools
            .iter()
            .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        let tool_choice = match &c.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "name": name}),
        };
        let input = json!({
            "format": format_json(self.input_format),
            "transcription": self.transcription.to_json(&self.transcription_model),
            "noise_reduction": c.noise_reduction.map(|n| json!({"type": n.as_str()})),
            "turn_detection": td,
        });
        let include: Vec<&str> = self
            .transcript_logprobs
            .then_some(INCLUDE_LOGPROBS)
            .into_iter()
            .collect();
        if c.transcription_only {
            return json!({
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": self.id,
                "audio": {"input": input},
                "include": include,
            });
        }
        json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": if c.audio_output { json!(["audio"]) } else { json!(["text"]) },
            "instructions": c.instructions,
            "tools": tools,
            "tool_choice": tool_choice,
            "max_output_tokens": c.max_output_tokens.map_or(json!("inf"), |m| json!(m)),
            "include": include,
            "audio": {
                "input": input,
                "output": {
                    "format": format_json(self.output_format),
                    "voice": c.voice,
                    "speed": c.speed,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
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
            .apply(&json!({"instructions": "x", "audio": {"input": {"turn_detection": {"threshold": 3}}}}))
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
            .apply(&json!({"type": "transcription", "audio": {"input": {"transcription":
                {"model": "gpt-4o-transcribe", "prompt": "Names: Ada.", "keywords": ["Lovelace"]}}}}))
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
        assert_eq!(back.config.transcription_language, None);
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
}

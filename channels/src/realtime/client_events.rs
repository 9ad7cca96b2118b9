//! Parsing Realtime client events (GA names; beta names accepted) from WebSocket text.
//!
//! Every failure becomes a [`CallError`] in the Realtime error shape, carrying the client's
//! `event_id` when one could be read, so the connection can answer it and go on.

use base64::Engine;
use serde_json::Value;
use switchboard_pipeline::call::{CallError, ResponseOptions};
use switchboard_pipeline::conversation::Item;

use super::session::{parse_max_tokens, parse_realtime_tools, parse_tool_choice};

/// Largest single client event (an audio append of ~2 minutes of 24 kHz PCM).
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, PartialEq)]
pub enum ClientEvent {
    SessionUpdate(Value),
    AudioAppend(Vec<u8>),
    AudioCommit,
    AudioClear,
    ItemCreate {
        previous_item_id: Option<String>,
        item: Item,
    },
    ItemTruncate {
        item_id: String,
        content_index: u32,
        audio_end_ms: u32,
    },
    ItemDelete {
        item_id: String,
    },
    ItemRetrieve {
        item_id: String,
    },
    ResponseCreate(ResponseOptions),
    ResponseCancel,
    OutputAudioClear,
}

#[derive(Debug, PartialEq)]
pub struct Parsed {
    pub event_id: Option<String>,
    pub event: ClientEvent,
}

fn required_str(v: &Value, key: &str) -> Result<String, CallError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(
            CallError::invalid("invalid_type", format!("'{key}' must be a string")).with_param(key),
        ),
        None => Err(CallError::invalid(
            "missing_required_parameter",
            format!("Missing required parameter: '{key}'."),
        )
        .with_param(key)),
    }
}

fn required_u32(v: &Value, key: &str) -> Result<u32, CallError> {
    match v.get(key) {
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                CallError::invalid(
                    "invalid_type",
                    format!("'{key}' must be a non-negative integer"),
                )
                .with_param(key)
            }),
        None => Err(CallError::invalid(
            "missing_required_parameter",
            format!("Missing required parameter: '{key}'."),
        )
        .with_param(key)),
    }
}

/// Parse one client event. `Err` carries the event id when the JSON had one.
pub fn parse(text: &str) -> Result<Parsed, CallError> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(CallError::invalid(
            "message_too_large",
            format!(
                "Event of {} bytes exceeds the limit of {MAX_EVENT_BYTES} bytes; send audio in smaller appends.",
                text.len()
            ),
        ));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        CallError::invalid("invalid_json", format!("The event is not valid JSON: {e}"))
    })?;
    let event_id = v.get("event_id").and_then(Value::as_str).map(str::to_owned);
    parse_value(&v)
        .map(|event| Parsed {
            event_id: event_id.clone(),
            event,
        })
        .map_err(|e| e.with_event_id(event_id))
}

fn parse_value(v: &Value) -> Result<ClientEvent, CallError> {
    if !v.is_object() {
        return Err(CallError::invalid(
            "invalid_event",
            "An event must be a JSON object.",
        ));
    }
    let kind = required_str(v, "type")?;
    Ok(match kind.as_str() {
        "session.update" => match v.get("session") {
            Some(s) => ClientEvent::SessionUpdate(s.clone()),
            None => {
                return Err(CallError::invalid(
                    "missing_required_parameter",
                    "Missing required parameter: 'session'.",
                )
                .with_param("session"));
            }
        },
        "input_audio_buffer.append" => {
            let audio = required_str(v, "audio")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(audio.as_bytes())
                .map_err(|e| {
                    CallError::invalid(
                        "invalid_value",
                        format!("Invalid 'audio': not valid base64 ({e})."),
                    )
                    .with_param("audio")
                })?;
            ClientEvent::AudioAppend(bytes)
        }
        "input_audio_buffer.commit" => ClientEvent::AudioCommit,
        "input_audio_buffer.clear" => ClientEvent::AudioClear,
        "conversation.item.create" => {
            let raw = v.get("item").ok_or_else(|| {
                CallError::invalid(
                    "missing_required_parameter",
                    "Missing required parameter: 'item'.",
                )
                .with_param("item")
            })?;
            let item: Item = serde_json::from_value(raw.clone()).map_err(|e| {
                CallError::invalid("invalid_value", format!("Invalid 'item': {e}"))
                    .with_param("item")
            })?;
            let previous_item_id = match v.get("previous_item_id") {
                None | Some(Value::Null) => None,
                Some(_) => Some(required_str(v, "previous_item_id")?),
            };
            ClientEvent::ItemCreate {
                previous_item_id,
                item,
            }
        }
        "conversation.item.truncate" => ClientEvent::ItemTruncate {
            item_id: required_str(v, "item_id")?,
            content_index: required_u32(v, "content_index")?,
            audio_end_ms: required_u32(v, "audio_end_ms")?,
        },
        "conversation.item.delete" => ClientEvent::ItemDelete {
            item_id: required_str(v, "item_id")?,
        },
        "conversation.item.retrieve" => ClientEvent::ItemRetrieve {
            item_id: required_str(v, "item_id")?,
        },
        "response.create" => ClientEvent::ResponseCreate(parse_response(v.get("response"))?),
        "response.cancel" => ClientEvent::ResponseCancel,
        "output_audio_buffer.clear" => ClientEvent::OutputAudioClear,
        // Ours: approve or reject a pending action; a response follows, as for
        // `response.create`, that tells the caller how it went.
        "switchboard.action.confirm" => {
            let action_id = required_str(v, "action_id")?;
            let approve = match v.get("approve") {
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(CallError::invalid(
                        "invalid_type",
                        "'approve' must be true or false",
                    )
                    .with_param("approve"));
                }
                None => {
                    return Err(CallError::invalid(
                        "missing_required_parameter",
                        "Missing required parameter: 'approve'.",
                    )
                    .with_param("approve"));
                }
            };
            ClientEvent::ResponseCreate(ResponseOptions {
                decision: Some((action_id, approve)),
                ..ResponseOptions::default()
            })
        }
        other => {
            return Err(CallError::invalid(
                "invalid_event_type",
                format!("Unknown or unsupported event type '{other}'."),
            )
            .with_param("type"));
        }
    })
}

fn parse_response(v: Option<&Value>) -> Result<ResponseOptions, CallError> {
    let mut opts = ResponseOptions::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(opts);
    };
    if !v.is_object() {
        return Err(
            CallError::invalid("invalid_type", "'response' must be an object")
                .with_param("response"),
        );
    }
    if let Some(x) = v.get("instructions") {
        let s = x.as_str().ok_or_else(|| {
            CallError::invalid("invalid_type", "'response.instructions' must be a string")
                .with_param("response.instructions")
        })?;
        opts.instructions = Some(s.to_owned());
    }
    if let Some(x) = v.get("output_modalities").or_else(|| v.get("modalities")) {
        let list = x.as_array().ok_or_else(|| {
            CallError::invalid(
                "invalid_type",
                "'response.output_modalities' must be an array",
            )
            .with_param("response.output_modalities")
        })?;
        opts.audio_output = Some(list.iter().any(|m| m == "audio"));
    }
    if let Some(x) = v.get("tools") {
        // Functions for this response instead of the session's, and MCP servers beside its.
        let (functions, servers) = parse_realtime_tools(x, "response.tools")?;
        opts.tools = Some(functions);
        opts.mcp = servers;
    }
    if let Some(x) = v.get("tool_choice") {
        opts.tool_choice = Some(parse_tool_choice(x, "response.tool_choice")?);
    }
    if let Some(x) = v.get("temperature") {
        let t = x
            .as_f64()
            .filter(|t| (0.0..=2.0).contains(t))
            .ok_or_else(|| {
                CallError::invalid(
                    "invalid_value",
                    "'response.temperature' must be between 0 and 2",
                )
                .with_param("response.temperature")
            })?;
        opts.temperature = Some(t as f32);
    }
    if let Some(x) = v
        .get("max_output_tokens")
        .or_else(|| v.get("max_response_output_tokens"))
    {
        opts.max_output_tokens = parse_max_tokens(x, "response.max_output_tokens")?;
    }
    if let Some(x) = v.get("metadata").filter(|x| !x.is_null()) {
        opts.metadata = parse_metadata(x)?;
    }
    if v.get("input").is_some_and(|x| !x.is_null()) {
        // Answering other items than the conversation's, silently, would be a wrong answer.
        return Err(CallError::invalid(
            "invalid_value",
            "Responses answer the conversation; 'response.input' (a context of its own) is not supported.",
        )
        .with_param("response.input"));
    }
    if let Some(c) = v.get("conversation").and_then(Value::as_str)
        && c != "auto"
    {
        return Err(CallError::invalid(
            "invalid_value",
            "Only responses in the default conversation are supported ('conversation': 'auto').",
        )
        .with_param("response.conversation"));
    }
    Ok(opts)
}

/// `response.metadata`: at most 16 pairs, keys up to 64 characters, string values up to 512
/// (OpenAI's limits).
fn parse_metadata(x: &Value) -> Result<Vec<(String, String)>, CallError> {
    let refuse = |message: String| {
        Err(CallError::invalid("invalid_value", message).with_param("response.metadata"))
    };
    let Value::Object(map) = x else {
        return refuse("'response.metadata' must be an object of strings".into());
    };
    if map.len() > 16 {
        return refuse(format!(
            "'response.metadata' has {} keys; at most 16",
            map.len()
        ));
    }
    let mut pairs = Vec::new();
    for (key, value) in map {
        let Some(value) = value.as_str() else {
            return refuse(format!("'response.metadata.{key}' must be a string"));
        };
        if key.chars().count() > 64 || value.chars().count() > 512 {
            return refuse(format!(
                "'response.metadata.{key}': keys are at most 64 characters, values 512"
            ));
        }
        pairs.push((key.clone(), value.to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn response_tools_replace_the_sessions_functions() {
        let p = parse(r#"{"type":"response.create","response":{"tools":[{"type":"function","name":"weather"}]}}"#)
            .unwrap();
        let ClientEvent::ResponseCreate(opts) = p.event else {
            panic!("{:?}", p.event);
        };
        let names: Vec<_> = opts
            .tools
            .iter()
            .flatten()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["weather"]);
        let none = parse(r#"{"type":"response.create","response":{}}"#).unwrap();
        assert!(matches!(
            none.event,
            ClientEvent::ResponseCreate(ResponseOptions { tools: None, .. })
        ));
        let mcp = r#"{"type":"response.create","response":{"tools":[{"type":"mcp","server_label":"a","server_url":"http://h"}]}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(mcp).unwrap().event else {
            panic!("a response.create");
        };
        assert_eq!(opts.tools, Some(Vec::new()), "no functions");
        assert_eq!(opts.mcp.len(), 1);
        assert_eq!(opts.mcp[0].label, "a");
        let bad = r#"{"type":"response.create","response":{"tools":[{"type":"mcp","server_label":"a"}]}}"#;
        let e = parse(bad).unwrap_err();
        assert!(
            e.param
                .as_deref()
                .is_some_and(|p| p.starts_with("response.tools[0]")),
            "{e:?}"
        );
    }

    #[test]
    fn out_of_band_responses_are_refused_by_name() {
        let input = r#"{"type":"response.create","response":{"input":[{"type":"item_reference","id":"item_1"}]}}"#;
        assert_eq!(
            parse(input).unwrap_err().param.as_deref(),
            Some("response.input")
        );
        let none = r#"{"type":"response.create","response":{"conversation":"none"}}"#;
        assert_eq!(
            parse(none).unwrap_err().param.as_deref(),
            Some("response.conversation")
        );
        let auto = r#"{"type":"response.create","response":{"conversation":"auto","input":null}}"#;
        assert!(parse(auto).is_ok());
    }

    #[test]
    fn response_metadata_is_kept_within_openais_limits() {
        let ok =
            r#"{"type":"response.create","response":{"metadata":{"topic":"weather","n":"1"}}}"#;
        let ClientEvent::ResponseCreate(opts) = parse(ok).unwrap().event else {
            panic!("a response.create");
        };
        let mut pairs = opts.metadata;
        pairs.sort();
        assert_eq!(
            pairs,
            [("n".into(), "1".into()), ("topic".into(), "weather".into())]
        );
        let many: serde_json::Map<String, Value> = (0..17)
            .map(|i| (format!("k{i}"), Value::from("v")))
            .collect();
        let too_many =
            serde_json::json!({"type": "response.create", "response": {"metadata": many}});
        for bad in [
            r#"{"type":"response.create","response":{"metadata":{"n":1}}}"#.to_owned(),
            r#"{"type":"response.create","response":{"metadata":"x"}}"#.to_owned(),
            too_many.to_string(),
            format!(
                r#"{{"type":"response.create","response":{{"metadata":{{"k":"{}"}}}}}}"#,
                "v".repeat(513)
            ),
        ] {
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("response.metadata"), "{bad}");
        }
    }

    #[test]
    fn parses_the_common_events() {
        let p = parse(r#"{"event_id":"e1","type":"input_audio_buffer.append","audio":"AAABAA=="}"#)
            .unwrap();
        assert_eq!(
            p,
            Parsed {
                event_id: Some("e1".into()),
                event: ClientEvent::AudioAppend(vec![0, 0, 1, 0])
            }
        );
        let p = parse(r#"{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}"#).unwrap();
        assert!(matches!(
            p.event,
            ClientEvent::ItemCreate {
                previous_item_id: None,
                ..
            }
        ));
        let p = parse(r#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c1","output":"42"}}"#).unwrap();
        assert!(matches!(p.event, ClientEvent::ItemCreate { .. }));
        let p = parse(r#"{"type":"response.create","response":{"modalities":["text"],"max_response_output_tokens":"inf"}}"#).unwrap();
        let ClientEvent::ResponseCreate(o) = p.event else {
            panic!()
        };
        assert_eq!(o.audio_output, Some(false));
        let p =
            parse(r#"{"type":"switchboard.action.confirm","action_id":"act_1","approve":true}"#)
                .unwrap();
        let ClientEvent::ResponseCreate(o) = p.event else {
            panic!()
        };
        assert_eq!(o.decision, Some(("act_1".to_owned(), true)));
        assert_eq!(
            parse(r#"{"type":"switchboard.action.confirm","action_id":"a","approve":"yes"}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("approve")
        );
        assert_eq!(parse(r#"{"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":1500}"#).unwrap().event,
            ClientEvent::ItemTruncate { item_id: "i".into(), content_index: 0, audio_end_ms: 1500 });
    }

    #[test]
    fn bad_input_gets_a_precise_error() {
        let e = parse("{not json").unwrap_err();
        assert_eq!(e.code, "invalid_json");
        let e = parse(r#"{"event_id":"e9","type":"no.such.event"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.event_id.as_deref(), e.param.as_deref()),
            ("invalid_event_type", Some("e9"), Some("type"))
        );
        let e = parse(r#"{"type":"input_audio_buffer.append","audio":"@@@"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("invalid_value", Some("audio"))
        );
        let e = parse(r#"{"type":"conversation.item.truncate","item_id":"i","content_index":0}"#)
            .unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("missing_required_parameter", Some("audio_end_ms"))
        );
        let e =
            parse(r#"{"type":"conversation.item.create","item":{"type":"bogus"}}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("item"));
        assert_eq!(parse("[1,2]").unwrap_err().code, "invalid_event");
        assert_eq!(parse(r#"{"type":5}"#).unwrap_err().code, "invalid_type");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_event_shaped_json(
            kind in prop::sample::select(vec!["session.update", "input_audio_buffer.append", "conversation.item.create",
                "conversation.item.truncate", "response.create", "conversation.item.delete", "x"]),
            key in "[a-z_]{1,12}",
            val in prop_oneof![Just("null".to_owned()), Just("1".to_owned()), Just("\"s\"".to_owned()), Just("{}".to_owned()), Just("[]".to_owned())],
        ) {
            let text = format!(r#"{{"type":"{kind}","{key}":{val}}}"#);
            let _ = parse(&text);
        }

        #[test]
        fn response_metadata_is_kept_whole_or_refused_for_a_limit(
            pairs in prop::collection::btree_map("\\PC{0,70}", "\\PC{0,520}", 0..20),
        ) {
            let event = serde_json::json!({"type": "response.create", "response": {"metadata": pairs}});
            let over = pairs.len() > 16
                || pairs.iter().any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 512);
            match parse(&event.to_string()) {
                Ok(p) => {
                    let ClientEvent::ResponseCreate(opts) = p.event else {
                        panic!("a response.create");
                    };
                    prop_assert!(!over);
                    let kept: std::collections::BTreeMap<String, String> =
                        opts.metadata.into_iter().collect();
                    prop_assert_eq!(kept, pairs);
                }
                Err(e) => {
                    prop_assert!(over, "refused within the limits: {:?}", e);
                    prop_assert_eq!(e.param.as_deref(), Some("response.metadata"));
                }
            }
        }
    }
}

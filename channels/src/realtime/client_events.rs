//! Parsing Realtime client events (GA names; beta names accepted) from WebSocket text.
//!
//! Every failure becomes a [`CallError`] in the Realtime error shape, carrying the client's
//! `event_id` when one could be read, so the connection can answer it and go on.

use base64::Engine;
use serde_json::Value;
use switchboard_pipeline::call::{CallError, ResponseOptions};
use switchboard_pipeline::conversation::Item;

use super::response_create::parse_response;

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
    /// Cancel the response named, or the conversation's.
    ResponseCancel {
        response_id: Option<String>,
    },
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
        "response.cancel" => ClientEvent::ResponseCancel {
            response_id: match v.get("response_id") {
                None | Some(Value::Null) => None,
                Some(_) => Some(required_str(v, "response_id")?),
            },
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    }
}

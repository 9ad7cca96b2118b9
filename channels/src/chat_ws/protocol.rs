//! The text-chat WebSocket protocol for web widgets: small JSON messages.
//!
//! Client to server:
//! - `{"type": "message", "content": "..."}` — the user says something; a reply follows.
//! - `{"type": "tool_result", "call_id": "...", "content": "..."}` — the result of a tool
//!   call the assistant made; once every call of a round has its result, the reply goes on.
//! - `{"type": "cancel"}` — stop the reply in progress (what was sent so far is kept).
//! - `{"type": "configure", "tools": [...]}` — the functions the assistant may call
//!   (OpenAI chat `tools` shape), for the following messages.
//!
//! Server to client: `session` (once, with the `session_id`), `token` (reply text as it is
//! generated), `tool_call` (a complete call), `message_complete` (the reply, its
//! `finish_reason` and the turn's `metadata`), `error` (`code`, `message`; the connection
//! stays open).

use serde_json::{Value, json};
use switchboard_pipeline::llm::ToolSpec;

use crate::realtime::session::parse_tools;

/// Longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Message { content: String },
    ToolResult { call_id: String, content: String },
    Cancel,
    Configure { tools: Vec<ToolSpec> },
}

/// Why a client message was refused: sent back as an `error` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> ProtocolError {
    ProtocolError {
        code,
        message: message.into(),
    }
}

fn string_field(v: &Value, field: &str) -> Result<String, ProtocolError> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(refuse(
            "invalid_value",
            format!("'{field}' must be a string"),
        )),
        None => Err(refuse("missing_field", format!("'{field}' is required"))),
    }
}

/// Parse one text frame.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(refuse(
            "message_too_large",
            format!("messages are at most {} KB", MAX_MESSAGE_BYTES / 1024),
        ));
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| refuse("invalid_json", format!("not valid JSON: {e}")))?;
    let Some(kind) = v.get("type").and_then(Value::as_str) else {
        return Err(refuse("missing_field", "'type' is required"));
    };
    match kind {
        "message" => {
            let content = string_field(&v, "content")?;
            if content.trim().is_empty() {
                return Err(refuse("invalid_value", "'content' is empty"));
            }
            Ok(ClientMessage::Message { content })
        }
        "tool_result" => Ok(ClientMessage::ToolResult {
            call_id: string_field(&v, "call_id")?,
            content: string_field(&v, "content")?,
        }),
        "cancel" => Ok(ClientMessage::Cancel),
        "configure" => {
            let tools = match v.get("tools") {
                None | Some(Value::Null) => Vec::new(),
                Some(t) => {
                    parse_tools(t, "tools").map_err(|e| refuse("invalid_value", e.message))?
                }
            };
            Ok(ClientMessage::Configure { tools })
        }
        other => Err(refuse(
            "unknown_type",
            format!(
                "unknown message type '{other}': use message, tool_result, cancel or configure"
            ),
        )),
    }
}

/// Server messages.
pub fn session(session_id: &str) -> Value {
    json!({"type": "session", "session_id": session_id})
}

pub fn token(content: &str) -> Value {
    json!({"type": "token", "content": content})
}

pub fn tool_call(call_id: &str, name: &str, arguments: &str) -> Value {
    json!({"type": "tool_call", "call_id": call_id, "name": name, "arguments": arguments})
}

pub fn message_complete(
    content: &str,
    finish_reason: &str,
    metadata: &[(String, String)],
) -> Value {
    let metadata: serde_json::Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({"type": "message_complete", "content": content, "finish_reason": finish_reason, "metadata": metadata})
}

pub fn error(e: &ProtocolError) -> Value {
    json!({"type": "error", "code": e.code, "message": e.message})
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_client_message() {
        assert_eq!(
            parse(r#"{"type": "message", "content": "hi"}"#),
            Ok(ClientMessage::Message {
                content: "hi".into()
            })
        );
        assert_eq!(
            parse(r#"{"type": "tool_result", "call_id": "c1", "content": "42"}"#),
            Ok(ClientMessage::ToolResult {
                call_id: "c1".into(),
                content: "42".into()
            })
        );
        assert_eq!(parse(r#"{"type": "cancel"}"#), Ok(ClientMessage::Cancel));
        let configured = parse(
            r#"{"type": "configure", "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]}"#,
        );
        assert!(
            matches!(configured, Ok(ClientMessage::Configure { tools }) if tools[0].name == "lookup")
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let code = |t: &str| parse(t).unwrap_err().code;
        assert_eq!(code("{"), "invalid_json");
        assert_eq!(code("{}"), "missing_field");
        assert_eq!(code(r#"{"type": "shout"}"#), "unknown_type");
        assert_eq!(code(r#"{"type": "message"}"#), "missing_field");
        assert_eq!(
            code(r#"{"type": "message", "content": 5}"#),
            "invalid_value"
        );
        assert_eq!(
            code(r#"{"type": "message", "content": "  "}"#),
            "invalid_value"
        );
        assert_eq!(
            code(r#"{"type": "configure", "tools": 3}"#),
            "invalid_value"
        );
        let huge = format!(
            r#"{{"type": "message", "content": "{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(code(&huge), "message_too_large");
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn any_json_object_gets_an_answer(kind in "[a-z_]{0,12}", content in proptest::option::of("\\PC{0,40}")) {
            let mut v = json!({"type": kind});
            if let Some(c) = content { v["content"] = json!(c); }
            let _ = parse(&v.to_string());
        }
    }
}

//! The text-chat WebSocket protocol for web widgets: small JSON messages.
//!
//! Client to server:
//! - `{"type": "message", "content": "..."}` — the user says something; a reply follows.
//! - `{"type": "tool_result", "call_id": "...", "content": "..."}` — the result of a tool
//!   call the assistant made; once every call of a round has its result, the reply goes on.
//! - `{"type": "cancel"}` — stop the reply in progress (what was sent so far is kept).
//! - `{"type": "configure", "tools": [...]}` — the functions the assistant may call
//!   (OpenAI chat `tools` shape), for the following messages.
//! - `{"type": "confirm", "action_id": "...", "approve": true}` — the user's answer to a
//!   `confirmation_request` (approve/reject buttons); the reply follows as for a message.
//!   Typing "yes" or "no" as a `message` answers too.
//!
//! Server to client: `session` (once, with the `session_id`), `token` (reply text as it is
//! generated), `tool_call` (a complete call), `message_complete` (the reply, its
//! `finish_reason` and the turn's `metadata`), `error` (`code`, `message`; the connection
//! stays open), and for the agent's own (server-side) tools: `confirmation_request`
//! (`action_id`, `tool`, `effect`, `prompt`, `expires_at` in Unix ms) before a change is
//! made, `action_resolved` (`action_id`, `status`: executed, failed, rejected, expired,
//! superseded) and `tool_ran` (`name`, `error`).

use serde_json::{Value, json};
use switchboard_pipeline::llm::{ActionNotice, ToolSpec};

use crate::realtime::session::parse_tools;

/// Longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Message { content: String },
    ToolResult { call_id: String, content: String },
    Cancel,
    Configure { tools: Vec<ToolSpec> },
    Confirm { action_id: String, approve: bool },
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
        "confirm" => {
            let action_id = string_field(&v, "action_id")?;
            let approve = match v.get("approve") {
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(refuse("invalid_value", "'approve' must be true or false")),
                None => return Err(refuse("missing_field", "'approve' is required")),
            };
            Ok(ClientMessage::Confirm { action_id, approve })
        }
        other => Err(refuse(
            "unknown_type",
            format!(
                "unknown message type '{other}': use message, tool_result, cancel, configure or confirm"
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

/// What the agent's own tools did (`None`: nothing a chat widget shows).
pub fn action(notice: &ActionNotice) -> Option<Value> {
    Some(match notice {
        ActionNotice::ConfirmationRequested(a) => json!({
            "type": "confirmation_request", "action_id": a.id, "tool": a.tool,
            "effect": a.effect.as_str(), "prompt": a.prompt, "expires_at": a.expires_at,
        }),
        ActionNotice::Resolved { action_id, status } => {
            json!({"type": "action_resolved", "action_id": action_id, "status": status})
        }
        ActionNotice::ToolRan { name, error } => {
            json!({"type": "tool_ran", "name": name, "error": error})
        }
        // Client-declared MCP servers belong to Realtime sessions.
        ActionNotice::CallControl(_)
        | ActionNotice::McpCallStarted(_)
        | ActionNotice::McpCallDone { .. }
        | ActionNotice::McpApprovalRequested(_) => return None,
    })
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
        assert_eq!(
            parse(r#"{"type": "confirm", "action_id": "act_1", "approve": false}"#),
            Ok(ClientMessage::Confirm {
                action_id: "act_1".into(),
                approve: false
            })
        );
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
        assert_eq!(
            code(r#"{"type": "confirm", "action_id": "a", "approve": "yes"}"#),
            "invalid_value"
        );
        assert_eq!(
            code(r#"{"type": "confirm", "action_id": "a"}"#),
            "missing_field"
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

//! Parsing OpenAI chat completion requests (`POST /v1/chat/completions`) into provider
//! requests. Outside input: every failure names the offending `param`, nothing panics.

use serde_json::Value;
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, ToolCall, ToolChoice};

use crate::realtime::session::{parse_tool_choice, parse_tools};

/// Why a request is refused (a 400 in OpenAI's error shape).
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRequest {
    pub message: String,
    pub param: String,
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: param.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct ChatCompletionRequest {
    pub request: ChatRequest,
    /// The model asked for (echoed in the response).
    pub model: String,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The end user: `user`, else `safety_identifier` (memory and profile are per user).
    pub user: Option<String>,
    /// The conversation to store the turn in: `metadata.session_id`, else `session_id`.
    pub session_id: Option<String>,
}

/// Whether `s` can name a user, session, document or persona: 1 to 200 bytes, no control
/// characters. Every API that takes such a name checks it with this.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control)
}

/// An identifier field: a non-empty string of at most 200 characters without control
/// characters, or absent.
fn identifier(body: &Value, pointer: &str, param: &str) -> Result<Option<String>, InvalidRequest> {
    match body.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_identifier(s) && !s.trim().is_empty() => {
            Ok(Some(s.trim().to_owned()))
        }
        Some(_) => Err(invalid(
            format!("{param} must be a string of 1 to 200 characters without control characters"),
            param,
        )),
    }
}

/// Parse a request body.
pub fn parse(body: &[u8]) -> Result<ChatCompletionRequest, InvalidRequest> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The body is not valid JSON: {e}"), "body"))?;
    if !v.is_object() {
        return Err(invalid("The body must be a JSON object.", "body"));
    }
    parse_value(&v)
}

/// Message content: a string, or an array of parts of which the text ones count.
fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// The request body as a provider request, or the 400 to answer.
pub fn parse_value(body: &Value) -> Result<ChatCompletionRequest, InvalidRequest> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(invalid("'messages' must be a non-empty array", "messages"));
    };
    if messages.is_empty() {
        return Err(invalid("'messages' must be a non-empty array", "messages"));
    }
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let text = content_text(m.get("content").unwrap_or(&Value::Null)).ok_or_else(|| {
            invalid(
                "content must be a string or an array of parts",
                &format!("{param}.content"),
            )
        })?;
        out.push(match m.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => ChatMessage::System(text),
            Some("user") => ChatMessage::User(text),
            Some("assistant") => {
                let tool_calls =
                    m.get("tool_calls")
                        .and_then(Value::as_array)
                        .map_or_else(Vec::new, |calls| {
                            calls
                                .iter()
                                .map(|c| ToolCall {
                                    id: c["id"].as_str().unwrap_or_default().to_owned(),
                                    name: c["function"]["name"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_owned(),
                                    arguments: c["function"]["arguments"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_owned(),
                                })
                                .collect()
                        });
                ChatMessage::Assistant {
                    content: text,
                    tool_calls,
                }
            }
            Some("tool") => ChatMessage::Tool {
                call_id: m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                content: text,
            },
            _ => {
                return Err(invalid(
                    "role must be system, developer, user, assistant or tool",
                    &format!("{param}.role"),
                ));
            }
        });
    }
    let tools = match body.get("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_tools(v, "tools").map_err(|e| invalid(e.message, "tools"))?,
    };
    let tool_choice = match body.get("tool_choice") {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(v) => {
            parse_tool_choice(v, "tool_choice").map_err(|e| invalid(e.message, "tool_choice"))?
        }
    };
    let temperature = match body.get("temperature") {
        None | Some(Value::Null) => None,
        Some(t) => match t.as_f64().filter(|t| (0.0..=2.0).contains(t)) {
            Some(t) => Some(t as f32),
            None => {
                return Err(invalid(
                    "temperature must be between 0 and 2",
                    "temperature",
                ));
            }
        },
    };
    let max_tokens = match body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
    {
        None | Some(Value::Null) => None,
        Some(m) => match m.as_u64().filter(|&m| m > 0 && m <= 1_000_000) {
            Some(m) => Some(m as u32),
            None => {
                return Err(invalid(
                    "max_tokens must be a positive integer",
                    "max_tokens",
                ));
            }
        },
    };
    let top_p = match body.get("top_p") {
        None | Some(Value::Null) => None,
        Some(p) => match p.as_f64().filter(|p| *p > 0.0 && *p <= 1.0) {
            Some(p) => Some(p as f32),
            None => return Err(invalid("top_p must be in (0, 1]", "top_p")),
        },
    };
    let seed = match body.get("seed") {
        None | Some(Value::Null) => None,
        Some(s) => match s.as_u64() {
            Some(s) => Some(s),
            None => return Err(invalid("seed must be a non-negative integer", "seed")),
        },
    };
    let user = match identifier(body, "/user", "user")? {
        Some(u) => Some(u),
        None => identifier(body, "/safety_identifier", "safety_identifier")?,
    };
    let session_id = match identifier(body, "/metadata/session_id", "metadata.session_id")? {
        Some(s) => Some(s),
        None => identifier(body, "/session_id", "session_id")?,
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ChatCompletionRequest {
        request: ChatRequest {
            messages: out,
            tools,
            tool_choice,
            temperature,
            top_p,
            max_tokens,
            seed,
            model: None,
            background: false,
            conversation: None,
        },
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("switchboard")
            .to_owned(),
        stream,
        include_usage,
        user,
        session_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_messages_tools_and_sampling() {
        let body = br#"{"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                         {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c", "content": "42"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "temperature": 0.2, "top_p": 0.5, "max_tokens": 9, "seed": 7}"#;
        let r = parse(body).unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.request.messages[1], ChatMessage::User("hi".into()));
        assert_eq!(r.request.tools[0].name, "f");
        assert_eq!((r.request.max_tokens, r.request.seed), (Some(9), Some(7)));
        assert_eq!((r.user, r.session_id), (None, None));
    }

    #[test]
    fn user_and_session_identify_the_conversation() {
        let r = parse(
            br#"{"messages": [{"role": "user", "content": "x"}], "user": "u-1",
            "metadata": {"session_id": "s-1"}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.user.as_deref(), r.session_id.as_deref()),
            (Some("u-1"), Some("s-1"))
        );
        let r = parse(
            br#"{"messages": [{"role": "user", "content": "x"}], "safety_identifier": "u-2",
            "session_id": "s-2"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.user.as_deref(), r.session_id.as_deref()),
            (Some("u-2"), Some("s-2"))
        );
        let param = |b: &[u8]| parse(b).unwrap_err().param;
        assert_eq!(
            param(br#"{"messages": [{"role": "user", "content": "x"}], "user": 5}"#),
            "user"
        );
        assert_eq!(
            param(br#"{"messages": [{"role": "user", "content": "x"}], "metadata": {"session_id": "a\nb"}}"#),
            "metadata.session_id"
        );
    }

    #[test]
    fn refusals_name_the_param() {
        let param = |b: &[u8]| parse(b).unwrap_err().param;
        assert_eq!(param(b"{"), "body");
        assert_eq!(param(br#"{"messages": []}"#), "messages");
        assert_eq!(
            param(br#"{"messages": [{"role": "wizard", "content": "x"}]}"#),
            "messages[0].role"
        );
        assert_eq!(
            param(br#"{"messages": [{"role": "user", "content": 5}]}"#),
            "messages[0].content"
        );
        assert_eq!(
            param(br#"{"messages": [{"role": "user", "content": "x"}], "temperature": 9}"#),
            "temperature"
        );
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&body);
        }

        #[test]
        fn never_panics_on_request_shaped_json(
            role in prop::sample::select(vec!["system", "user", "assistant", "tool", "x"]),
            content in prop_oneof![Just("null"), Just("\"t\""), Just("[{\"text\": 1}]"), Just("{}"), Just("[]")],
            extra in prop::sample::select(vec!["temperature", "top_p", "max_tokens", "seed", "tools", "tool_choice", "stream"]),
            val in prop_oneof![Just("null"), Just("-1"), Just("0.5"), Just("\"s\""), Just("{}"), Just("[{}]")],
        ) {
            let body = format!(r#"{{"messages": [{{"role": "{role}", "content": {content}}}], "{extra}": {val}}}"#);
            let _ = parse(body.as_bytes());
        }
    }
}

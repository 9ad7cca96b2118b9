//! What can be done to a live call from outside it (an operator's dashboard, a supervisor,
//! another instance): hang up, inject a message, transfer a phone call. Parsed from the
//! `/v1/calls/{id}/...` request bodies and carried between instances as JSON.

use serde::{Deserialize, Serialize};

/// The longest injected message.
pub const MAX_MESSAGE_CHARS: usize = 4000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlAction {
    /// End the call (on a phone call, through the provider when it is configured).
    Hangup,
    /// Add a message to the conversation: `system` guidance the agent follows, or a `user`
    /// message as if the caller had said it; with `respond`, the agent answers at once,
    /// interrupting what it is saying, or (`interrupt: false`) once it has finished.
    Message {
        role: MessageRole,
        text: String,
        #[serde(default)]
        respond: bool,
        #[serde(default = "interrupts")]
        interrupt: bool,
    },
    /// Hand a phone call to a number (E.164).
    Transfer { to: String },
    /// Let the agent speak once it has finished its current sentence, about news the
    /// conversation already holds (an action that ended outside the call): internal, not
    /// an HTTP route.
    Respond,
}

fn interrupts() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    System,
    User,
}

/// The message between instances: which call, whose, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlMessage {
    pub call_id: String,
    pub tenant: String,
    #[serde(flatten)]
    pub action: ControlAction,
}

/// A bad request body: the message and the `param` it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub param: &'static str,
}

fn invalid(message: impl Into<String>, param: &'static str) -> Invalid {
    Invalid {
        message: message.into(),
        param,
    }
}

/// `POST /v1/calls/{id}/messages` body:
/// `{"role": "system"|"user", "text", "respond"?, "interrupt"?}` (`interrupt` defaults to true).
pub fn parse_message(body: &[u8]) -> Result<ControlAction, Invalid> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        role: Option<String>,
        text: Option<String>,
        #[serde(default)]
        respond: bool,
        #[serde(default = "interrupts")]
        interrupt: bool,
    }
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The body must be a JSON object: {e}"), "body"))?;
    let role = match b.role.as_deref() {
        None | Some("system") => MessageRole::System,
        Some("user") => MessageRole::User,
        Some(other) => {
            return Err(invalid(
                format!("role must be 'system' or 'user', not '{other}'"),
                "role",
            ));
        }
    };
    let text = b.text.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(invalid(
            format!("text must be 1 to {MAX_MESSAGE_CHARS} characters"),
            "text",
        ));
    }
    Ok(ControlAction::Message {
        role,
        text: text.to_owned(),
        respond: b.respond,
        interrupt: b.interrupt,
    })
}

/// `POST /v1/calls/{id}/transfer` body: `{"to": "+15550100"}`.
pub fn parse_transfer(body: &[u8]) -> Result<ControlAction, Invalid> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The body must be a JSON object: {e}"), "body"))?;
    let to = v
        .get("to")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .trim();
    let digits = to.strip_prefix('+').unwrap_or("");
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "to must be an E.164 number such as +15550100",
            "to",
        ));
    }
    Ok(ControlAction::Transfer { to: to.to_owned() })
}

/// A control message from another instance; `None` when it is not one of ours.
pub fn parse_message_from_peer(text: &str) -> Option<ControlMessage> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_and_transfers_parse_or_name_the_param() {
        assert_eq!(
            parse_message(br#"{"text": " Offer the gold plan. "}"#).unwrap(),
            ControlAction::Message {
                role: MessageRole::System,
                text: "Offer the gold plan.".into(),
                respond: false,
                interrupt: true,
            }
        );
        assert!(matches!(
            parse_message(br#"{"text": "x", "respond": true, "interrupt": false}"#),
            Ok(ControlAction::Message {
                respond: true,
                interrupt: false,
                ..
            })
        ));
        assert_eq!(
            parse_message(br#"{"text": "x", "interrupt": "no"}"#)
                .unwrap_err()
                .param,
            "body"
        );
        assert_eq!(
            parse_message(br#"{"role": "bot", "text": "x"}"#)
                .unwrap_err()
                .param,
            "role"
        );
        assert_eq!(
            parse_message(br#"{"text": "  "}"#).unwrap_err().param,
            "text"
        );
        assert_eq!(parse_message(b"[1]").unwrap_err().param, "body");
        assert_eq!(
            parse_transfer(br#"{"to": "+15550100"}"#).unwrap(),
            ControlAction::Transfer {
                to: "+15550100".into()
            }
        );
        for bad in [&br#"{"to": "15550100"}"#[..], br#"{"to": "+1-555"}"#, b"{}"] {
            assert_eq!(parse_transfer(bad).unwrap_err().param, "to");
        }
    }

    #[test]
    fn control_messages_round_trip_between_instances() {
        let m = ControlMessage {
            call_id: "call_1".into(),
            tenant: "acme".into(),
            action: ControlAction::Message {
                role: MessageRole::User,
                text: "hi".into(),
                respond: true,
                interrupt: false,
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(parse_message_from_peer(&text), Some(m));
        assert_eq!(parse_message_from_peer("{\"action\":\"explode\"}"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_message(&bytes);
            let _ = parse_transfer(&bytes);
            let _ = parse_message_from_peer(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn accepted_messages_are_within_bounds(text in ".{0,50}", role in "(system|user|other)") {
            let body = serde_json::json!({"role": role, "text": text}).to_string();
            if let Ok(ControlAction::Message { text, .. }) = parse_message(body.as_bytes()) {
                prop_assert!(!text.is_empty() && text.trim() == text);
            }
        }
    }
}

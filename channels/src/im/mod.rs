//! IM bots and webhooks: what Telegram, Slack and the generic webhook channel POST to us,
//! parsed into the one message the agent answers. Each parser takes the raw body, never
//! panics, and refuses what it cannot read with an [`InvalidMessage`] (a 400 in OpenAI's
//! error shape). The gateway checks signatures with [`crate::signing`], stores the message
//! in its inbox and delivers the answer.

pub mod slack;
pub mod telegram;
pub mod webhook;

use serde_json::Value;

/// A message to answer, as a channel delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImMessage {
    /// The sender's id for this delivery; a redelivery carries the same one, so nothing
    /// is answered twice.
    pub id: String,
    /// One agent session per conversation (a chat, a thread).
    pub conversation: String,
    pub user: Option<String>,
    /// What was said, trimmed. Empty only for a Telegram voice note, transcribed later.
    pub text: String,
    /// Where the answer goes: a channel's address as JSON, or a callback URL.
    pub reply_to: Option<String>,
}

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidMessage {
    pub message: &'static str,
    pub param: &'static str,
    pub code: &'static str,
}

const NOT_JSON: InvalidMessage = InvalidMessage {
    message: "The body must be a JSON object.",
    param: "body",
    code: "invalid_json",
};

/// The body as a JSON object.
fn json_object(body: &[u8]) -> Result<Value, InvalidMessage> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(NOT_JSON),
    }
}

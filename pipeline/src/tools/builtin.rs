//! Tools the gateway itself provides, offered by persona settings rather than declared:
//!
//! - `escalate_to_human` (a persona with `[personas.NAME.handoff]`): a signed webhook with
//!   the model's summary and the transcript goes to the team's system (delivered durably,
//!   retried with backoff, by the gateway's [`HandoffSink`]); on a phone call with
//!   `transfer_to`, the call is then transferred there.
//! - `end_call` (a persona with `end_call = true`, phone calls only): hang up after the
//!   goodbye has been heard.
//!
//! Both act on the call itself, so they run without confirmation: the caller asked for them.
//! The channel carries out call control after the reply has been played
//! ([`crate::llm::ActionNotice::CallControl`]).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::engine::ToolScope;
use super::http::ToolOutput;
use super::{SideEffect, ToolDef};
use crate::persona::Persona;

pub const ESCALATE: &str = "escalate_to_human";
pub const END_CALL: &str = "end_call";

/// What a built-in tool does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builtin {
    Escalate {
        webhook_url: Option<String>,
        /// Set on phone calls only.
        transfer_to: Option<String>,
    },
    EndCall,
}

/// A persona's hand-off to people.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffConfig {
    /// Where the hand-off is POSTed (signed with `SWITCHBOARD_HANDOFF_SECRET`).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Phone calls are transferred to this number (E.164, `+15550100`).
    #[serde(default)]
    pub transfer_to: Option<String>,
}

impl HandoffConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.webhook_url.is_none() && self.transfer_to.is_none() {
            return Err("handoff needs webhook_url, transfer_to or both".into());
        }
        if let Some(u) = &self.webhook_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err("handoff.webhook_url must be an http(s) URL".into());
        }
        if let Some(n) = &self.transfer_to
            && !(n.starts_with('+')
                && n.len() >= 8
                && n.len() <= 16
                && n[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("handoff.transfer_to must be an E.164 number like +15550100".into());
        }
        Ok(())
    }
}

/// What the channel is asked to do with the call once the reply has been heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallControl {
    Hangup,
    Transfer { to: String },
}

/// One hand-off, as the gateway delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    pub scope: ToolScope,
    pub webhook_url: String,
    /// The model's summary of the conversation and what the caller needs.
    pub summary: String,
    pub reason: String,
    /// The number the call is being transferred to, if it is.
    pub transfer_to: Option<String>,
}

/// Delivers hand-offs durably (the gateway: stored first, then a signed POST with retries).
#[async_trait]
pub trait HandoffSink: Send + Sync {
    /// Accept the hand-off for delivery; its id.
    async fn hand_off(&self, handoff: Handoff) -> Result<String, String>;
}

/// Run a built-in tool: the hand-off goes to `sink`; call control is the runner's to announce.
pub(super) async fn run(
    b: &Builtin,
    scope: &ToolScope,
    args: &Map<String, Value>,
    sink: Option<&dyn HandoffSink>,
) -> ToolOutput {
    let started = std::time::Instant::now();
    let out = |content: Value, error: Option<&'static str>| ToolOutput {
        content: content.to_string(),
        error,
        status: None,
        attempts: 1,
        elapsed: started.elapsed(),
    };
    match b {
        Builtin::EndCall => out(
            json!({"status": "ending", "message": "The call ends once your goodbye has been heard."}),
            None,
        ),
        Builtin::Escalate {
            webhook_url,
            transfer_to,
        } => {
            let text = |k: &str| {
                args.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            let mut handed_off = None;
            if let Some(url) = webhook_url {
                let Some(sink) = sink else {
                    return out(
                        json!({"error": "not_configured", "message": "Hand-off is not configured."}),
                        Some("not_configured"),
                    );
                };
                let handoff = Handoff {
                    scope: scope.clone(),
                    webhook_url: url.clone(),
                    summary: text("summary"),
                    reason: text("reason"),
                    transfer_to: transfer_to.clone(),
                };
                match sink.hand_off(handoff).await {
                    Ok(id) => handed_off = Some(id),
                    Err(e) => {
                        tracing::warn!(error = %e, "hand-off not accepted");
                        return out(
                            json!({"error": "unavailable", "message": "The hand-off could not be sent; apologise and offer to take a message."}),
                            Some("unavailable"),
                        );
                    }
                }
            }
            let message = if transfer_to.is_some() {
                "The call is transferred to a colleague after your reply; tell the caller so."
            } else {
                "A colleague has the summary and will follow up; tell the caller so."
            };
            out(
                json!({"status": "handed_off", "handoff_id": handed_off, "transfer": transfer_to.is_some(), "message": message}),
                None,
            )
        }
    }
}

/// The built-in tools this persona has on this channel.
pub fn tools_for(persona: &Persona, channel: &str) -> Vec<ToolDef> {
    let phone = channel == "phone";
    let mut out = Vec::new();
    if let Some(h) = &persona.handoff
        && (h.webhook_url.is_some() || phone && h.transfer_to.is_some())
    {
        let how = if phone && h.transfer_to.is_some() {
            "The call is then transferred to a person."
        } else {
            "A person will follow up."
        };
        out.push(builtin(
            ESCALATE,
            &format!("Hand the conversation over to a human colleague when the caller asks for a person or you cannot help. {how}"),
            json!({"type": "object", "properties": {
                "summary": {"type": "string", "description": "Two or three sentences: who the caller is, what they need, what was tried."},
                "reason": {"type": "string", "description": "Why a person is needed."}},
                "required": ["summary"]}),
            Builtin::Escalate {
                webhook_url: h.webhook_url.clone(),
                transfer_to: h.transfer_to.clone().filter(|_| phone),
            },
        ));
    }
    if phone && persona.end_call {
        out.push(builtin(
            END_CALL,
            "Hang up the phone call. Say goodbye first; the call ends after your reply has been heard.",
            json!({"type": "object", "properties": {}}),
            Builtin::EndCall,
        ));
    }
    out
}

fn builtin(name: &str, description: &str, parameters: Value, kind: Builtin) -> ToolDef {
    ToolDef {
        name: name.into(),
        description: description.into(),
        parameters,
        effect: SideEffect::Read,
        timeout_ms: 10_000,
        confirm: None,
        idempotent: false,
        http: None,
        mcp: None,
        builtin: Some(kind),
    }
}

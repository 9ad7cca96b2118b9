//! Hand-off to people (`escalate_to_human`): the conversation goes to the team's system as a
//! signed webhook, durably. The hand-off is stored in the inbox as an answer owed to
//! `webhook_url`, so the one inbox worker delivers it with the same retries (1 s doubling,
//! 8 attempts) and a restart does not lose it.
//!
//! The POST body: `{"id", "type": "handoff", "session_id", "user", "persona", "channel",
//! "summary", "reason", "transfer_to", "transcript": [{"role", "content"}], "created_at"}`,
//! signed like the webhook channel: `X-Switchboard-Timestamp` and
//! `X-Switchboard-Signature: v1=<hex HMAC-SHA256(SWITCHBOARD_HANDOFF_SECRET, "{ts}.{body}")>`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchboard_pipeline::tools::builtin::{Handoff, HandoffSink};

use crate::server::AppState;
use crate::store::inbox::InboxMessage;
use crate::store::{Store, now_ms};
use crate::turns::{TurnLog, new_id};

pub const CHANNEL: &str = "handoff";
/// Messages of the conversation sent along.
const TRANSCRIPT_MESSAGES: usize = 20;

/// Stores hand-offs for the inbox worker.
pub struct HandoffInbox {
    pub store: Store,
    pub turns: TurnLog,
    pub wake: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl HandoffSink for HandoffInbox {
    async fn hand_off(&self, h: Handoff) -> Result<String, String> {
        let tenant = &h.scope.tenant;
        let transcript: Vec<Value> = match &h.scope.session {
            Some(s) => {
                let all = self
                    .store
                    .messages(tenant, s)
                    .await
                    .map_err(|e| e.to_string())?;
                let skip = all.len().saturating_sub(TRANSCRIPT_MESSAGES);
                all.into_iter()
                    .skip(skip)
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect()
            }
            None => Vec::new(),
        };
        let id = new_id("handoff");
        let payload = json!({
            "id": id, "type": "handoff", "session_id": h.scope.session, "user": h.scope.user,
            "persona": h.scope.persona, "channel": h.scope.channel, "summary": h.summary,
            "reason": h.reason, "transfer_to": h.transfer_to, "transcript": transcript,
            "created_at": now_ms(),
        });
        let m = InboxMessage {
            channel: CHANNEL.into(),
            id: id.clone(),
            conversation: h.scope.session.clone().unwrap_or_else(|| id.clone()),
            user: h.scope.user.clone(),
            text: h.summary.clone(),
            reply_to: Some(h.webhook_url.clone()),
            status: "replied".into(),
            reply: Some(payload.to_string()),
            attempts: 0,
        };
        self.store
            .inbox_enqueue_reply(tenant, &m)
            .await
            .map_err(|e| e.to_string())?;
        self.wake.notify_one();
        self.turns.audit(
            tenant,
            h.scope.session.as_deref(),
            "handoff.created",
            json!({"handoff_id": id, "channel": h.scope.channel, "reason": h.reason, "transfer_to": h.transfer_to}),
        );
        Ok(id)
    }
}

/// POST a stored hand-off, signed, through the outbound guard.
pub async fn deliver(state: &AppState, m: &InboxMessage) -> Result<(), String> {
    let (Some(url), Some(body), Some(secret)) = (
        m.reply_to.as_deref(),
        m.reply.as_deref(),
        state.handoff_secret.as_deref(),
    ) else {
        return Err("no hand-off URL, body or secret".into());
    };
    crate::webhook::post_signed(state, url, secret, body.to_owned(), &m.id, "hand-off").await
}

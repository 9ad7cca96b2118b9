//! The generic webhook channel: any system that can sign JSON can talk to the agent.
//!
//! In: `POST /v1/webhooks/messages` with `{"id", "conversation", "user"?, "text",
//! "callback_url"?}`, signed with the shared secret (`SWITCHBOARD_WEBHOOK_SECRET`):
//! `X-Switchboard-Timestamp: <unix seconds>` and
//! `X-Switchboard-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`, within 5 minutes.
//! `id` is the sender's idempotency key: a message is stored (202) before anything else
//! happens, and the same id again is acknowledged (200) but never answered twice.
//!
//! Out: the answer is POSTed to `callback_url` (or `SWITCHBOARD_WEBHOOK_CALLBACK_URL`) as
//! `{"id", "in_reply_to", "conversation", "user", "text"}`, signed the same way, retried with
//! exponential backoff (1 s doubling to 5 min, 8 attempts) until a 2xx. The work runs on one
//! background task from the database, so a restart resumes where the last process stopped.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_channels::chat_request::is_identifier;
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmEvent};
use switchboard_pipeline::orchestrator::TurnRequest;
use tokio::sync::Notify;

use crate::server::{AppState, invalid_request, openai_error};
use crate::store::inbox::InboxMessage;
use crate::store::now_ms;
use crate::turns::{Turn, new_id};

const CHANNEL: &str = "webhook";
/// Signed requests older or newer than this are refused (replays).
const MAX_SKEW_SECS: i64 = 300;
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_ATTEMPTS: i64 = 8;

/// Webhook settings; the channel is off without a secret.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    pub secret: Option<String>,
    pub callback_url: Option<String>,
}

/// `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ts: i64 = get("x-switchboard-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or("missing or malformed X-Switchboard-Timestamp")?;
    let presented = get("x-switchboard-signature").ok_or("missing X-Switchboard-Signature")?;
    if (now_ms() / 1000 - ts).abs() > MAX_SKEW_SECS {
        return Err("the timestamp is more than 5 minutes from now (replay?)");
    }
    let expected = sign(secret, ts, body);
    let same = expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err("the signature does not match")
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str).map(str::trim)
}

/// `POST /v1/webhooks/messages`.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(secret) = &state.webhook.secret else {
        return openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "channel_disabled",
            "The webhook channel is off: set SWITCHBOARD_WEBHOOK_SECRET.",
        );
    };
    if body.len() > MAX_BODY_BYTES {
        return openai_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "message_too_large",
            "A webhook message is at most 64 KB.",
        );
    }
    if let Err(why) = verify(secret, &headers, &body) {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_signature",
            why,
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return invalid_request("The body must be a JSON object.", "body", "invalid_json");
    };
    let id = field(&v, "id").filter(|s| is_identifier(s));
    let conversation = field(&v, "conversation").filter(|s| is_identifier(s));
    let text = field(&v, "text").filter(|s| !s.is_empty());
    let (Some(id), Some(conversation), Some(text)) = (id, conversation, text) else {
        return invalid_request(
            "'id', 'conversation' (identifiers) and 'text' (non-empty) are required.",
            "body",
            "missing_required_parameter",
        );
    };
    let callback_url = field(&v, "callback_url")
        .map(str::to_owned)
        .or_else(|| state.webhook.callback_url.clone());
    let Some(callback_url) = callback_url.filter(|u| u.starts_with("http")) else {
        return invalid_request(
            "No 'callback_url' in the message and none configured.",
            "callback_url",
            "missing_required_parameter",
        );
    };
    let message = InboxMessage {
        channel: CHANNEL.into(),
        id: id.to_owned(),
        conversation: conversation.to_owned(),
        user: field(&v, "user")
            .filter(|u| is_identifier(u))
            .map(str::to_owned),
        text: text.to_owned(),
        callback_url: Some(callback_url),
        status: "pending".into(),
        reply: None,
        attempts: 0,
    };
    match state.store.inbox_accept(&state.tenant, &message).await {
        Ok(true) => {
            state.webhook_work.notify_one();
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"id": id, "status": "accepted"})),
            )
                .into_response()
        }
        Ok(false) => {
            let status = state
                .store
                .inbox_get(&state.tenant, CHANNEL, id)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "accepted".into());
            (
                StatusCode::OK,
                axum::Json(json!({"id": id, "status": status, "duplicate": true})),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a webhook message");
            openai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "store_unavailable",
                "The message could not be stored; send it again.",
            )
        }
    }
}

/// The background worker: answers pending messages and delivers answers, from the database.
pub async fn work(state: Arc<AppState>, wake: Arc<Notify>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        let due = state.store.inbox_due(20).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the webhook inbox");
            Vec::new()
        });
        for (tenant, mut m) in due {
            if m.status == "pending" {
                let Some(reply) = answer(&state, &tenant, &m).await else {
                    // No provider answered: try again later, the message stays pending.
                    let _ = state
                        .store
                        .inbox_update(&tenant, &m, now_ms() + 5_000, Some("no answer"))
                        .await;
                    continue;
                };
                m.status = "replied".into();
                m.reply = Some(reply);
                let _ = state.store.inbox_update(&tenant, &m, now_ms(), None).await;
            }
            deliver(&state, &client, &tenant, m).await;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn answer(state: &AppState, tenant: &str, m: &InboxMessage) -> Option<String> {
    let mut messages: Vec<ChatMessage> = state
        .store
        .messages(tenant, &m.conversation)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| match r.role.as_str() {
            "assistant" => ChatMessage::Assistant {
                content: r.content,
                tool_calls: Vec::new(),
            },
            _ => ChatMessage::User(r.content),
        })
        .collect();
    messages.push(ChatMessage::User(m.text.clone()));
    let prepared = state
        .orchestrator
        .prepare(TurnRequest {
            tenant: tenant.to_owned(),
            user: m.user.clone(),
            session: Some(m.conversation.clone()),
            persona: None,
            request: ChatRequest {
                messages,
                ..Default::default()
            },
            summary: None,
        })
        .await;
    let persona = prepared.persona.clone();
    let mut events = state.orchestrator.generate(prepared.request);
    let mut reply = String::new();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(LlmEvent::Text(t)) => reply.push_str(&t),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook turn failed");
                return None;
            }
        }
    }
    state.turns.record(Turn {
        tenant: tenant.to_owned(),
        session_id: m.conversation.clone(),
        channel: CHANNEL,
        user: m.user.clone(),
        persona,
        user_text: m.text.clone(),
        reply: reply.clone(),
        truncated: false,
        tool_calls: Vec::new(),
    });
    Some(reply)
}

async fn deliver(state: &AppState, client: &reqwest::Client, tenant: &str, mut m: InboxMessage) {
    let (Some(url), Some(secret)) = (m.callback_url.clone(), state.webhook.secret.as_deref())
    else {
        return;
    };
    let body = json!({"id": new_id("msg"), "in_reply_to": m.id, "conversation": m.conversation,
        "user": m.user, "text": m.reply})
    .to_string();
    let ts = now_ms() / 1000;
    let sent = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-switchboard-timestamp", ts.to_string())
        .header("x-switchboard-signature", sign(secret, ts, body.as_bytes()))
        .header("idempotency-key", format!("reply-{}", m.id))
        .body(body)
        .send()
        .await;
    let error = match sent {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("callback answered {}", r.status())),
        Err(e) => Some(format!("callback failed: {e}")),
    };
    m.attempts += 1;
    let next = match &error {
        None => {
            m.status = "delivered".into();
            now_ms()
        }
        Some(_) if m.attempts >= MAX_ATTEMPTS => {
            m.status = "failed".into();
            now_ms()
        }
        Some(_) => now_ms() + (1_000i64 << (m.attempts - 1).min(8)).min(300_000),
    };
    if let Some(e) = &error {
        tracing::info!(id = %m.id, attempt = m.attempts, error = %e, "webhook callback failed");
    }
    if let Err(e) = state
        .store
        .inbox_update(tenant, &m, next, error.as_deref())
        .await
    {
        tracing::warn!(error = %e, "recording a webhook delivery");
    }
}

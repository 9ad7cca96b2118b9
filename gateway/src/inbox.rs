//! The worker behind every message channel (signed webhooks, Slack, Telegram): it drives the
//! durable inbox from the database, so an accepted message is answered exactly once and its
//! answer delivered even across crashes and failing endpoints.
//!
//! `pending` → the orchestrator (history: the stored session named by `conversation`) →
//! `replied` → the channel's delivery (callback, `chat.postMessage`, `sendMessage`) →
//! `delivered`; a failed delivery is retried with backoff (1 s doubling, capped at 5 min) and
//! given up (`failed`) after 8 attempts. One worker per process; instances sharing a
//! database claim each message with a lease (10 s, renewed while working, migration 0005),
//! so two never work on the same one and a crashed instance's are taken over.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmError, LlmEvent};
use switchboard_pipeline::orchestrator::TurnRequest;
use tokio::sync::Notify;

use crate::server::AppState;
use crate::store::inbox::InboxMessage;
use crate::store::now_ms;
use crate::turns::Turn;

const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed message is this worker's; renewed every third of it while it works,
/// so a crashed instance's messages are taken over within this long.
const LEASE_MS: i64 = 10_000;

/// Whether any message channel is configured (the worker runs only then).
pub fn enabled(state: &AppState) -> bool {
    state.webhook.secret.is_some()
        || state.slack.is_some()
        || state.telegram.is_some()
        || state.handoff_secret.is_some()
}

pub async fn work(state: Arc<AppState>, wake: Arc<Notify>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    // Leases name this process, so instances sharing a database never work on one message
    // at once.
    let owner = crate::turns::new_id("worker");
    loop {
        let due = state.store.inbox_due(20).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the message inbox");
            Vec::new()
        });
        for (tenant, m) in due {
            match state
                .store
                .inbox_claim(&tenant, &m, &owner, now_ms() + LEASE_MS)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue, // another instance has it
                Err(e) => {
                    tracing::warn!(error = %e, "claiming an inbox message");
                    continue;
                }
            }
            let work = process(&state, &client, &tenant, m.clone());
            tokio::pin!(work);
            let mut renew = tokio::time::interval(Duration::from_millis(LEASE_MS as u64 / 3));
            renew.tick().await;
            loop {
                tokio::select! {
                    () = &mut work => break,
                    _ = renew.tick() => {
                        let _ = state.store.inbox_lease(&tenant, &m, &owner, now_ms() + LEASE_MS).await;
                    }
                }
            }
            if let Err(e) = state.store.inbox_lease(&tenant, &m, &owner, 0).await {
                tracing::warn!(error = %e, "releasing an inbox message");
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Answer a pending message (once), then deliver the answer.
async fn process(state: &AppState, client: &reqwest::Client, tenant: &str, mut m: InboxMessage) {
    if m.status == "pending" && m.text.is_empty() && m.channel == "telegram" {
        match crate::telegram::voice_text(state, client, &m).await {
            Ok(text) if !text.is_empty() => m.text = text,
            Ok(_) => m.text = "[an inaudible voice note]".into(),
            Err(e) => {
                tracing::info!(id = %m.id, error = %e, "voice note not transcribed yet");
                let _ = state
                    .store
                    .inbox_update(tenant, &m, now_ms() + 5_000, Some(&e))
                    .await;
                return;
            }
        }
    }
    if m.status == "pending" {
        let reply = match answer(state, tenant, &m).await {
            Ok(reply) => reply,
            // No provider answered, or the tenant's token budget is spent: the message stays
            // pending and is tried again (when the budget has room, not every few seconds).
            Err(wait) => {
                let (wait_ms, why) = match wait {
                    Some(d) => (d.as_millis() as i64, "token budget spent"),
                    None => (5_000, "no answer"),
                };
                let _ = state
                    .store
                    .inbox_update(tenant, &m, now_ms() + wait_ms.max(1_000), Some(why))
                    .await;
                return;
            }
        };
        m.status = "replied".into();
        m.reply = Some(reply);
        let _ = state.store.inbox_update(tenant, &m, now_ms(), None).await;
    }
    deliver(state, client, tenant, m).await;
}

/// The answer to `m`; `Err(Some(wait))` while the tenant's token budget is spent,
/// `Err(None)` when no provider answered.
async fn answer(
    state: &AppState,
    tenant: &str,
    m: &InboxMessage,
) -> Result<String, Option<std::time::Duration>> {
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
            channel: m.channel.clone(),
            user: m.user.clone(),
            session: Some(m.conversation.clone()),
            // The channel's persona from the persona file (`[channels.NAME]`), else the default.
            persona: state.orchestrator.personas.channel(&m.channel).persona,
            request: ChatRequest {
                messages,
                conversation: Some(m.conversation.clone()),
                ..Default::default()
            },
            decision: None,
            speculative: Default::default(),
            ..Default::default()
        })
        .await;
    let persona = prepared.persona.clone();
    let mut events = state.orchestrator.respond(prepared);
    let mut reply = String::new();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(LlmEvent::Text(t)) => reply.push_str(&t),
            Ok(_) => {}
            Err(LlmError::TokenBudget { retry_after }) => return Err(Some(retry_after)),
            Err(e) => {
                tracing::warn!(error = %e, channel = %m.channel, "message turn failed");
                return Err(None);
            }
        }
    }
    let channel = match m.channel.as_str() {
        "slack" => "slack",
        "telegram" => "telegram",
        _ => "webhook",
    };
    state.turns.record(Turn {
        tenant: tenant.to_owned(),
        session_id: m.conversation.clone(),
        channel,
        user: m.user.clone(),
        persona,
        user_text: m.text.clone(),
        reply: reply.clone(),
        truncated: false,
        tool_calls: Vec::new(),
    });
    Ok(reply)
}

async fn deliver(state: &AppState, client: &reqwest::Client, tenant: &str, mut m: InboxMessage) {
    let result = match m.channel.as_str() {
        "slack" => crate::slack::deliver(state, client, &m).await,
        "telegram" => crate::telegram::deliver(state, client, &m).await,
        crate::handoff::CHANNEL => crate::handoff::deliver(state, &m).await,
        _ => crate::webhook::deliver(state, &m).await,
    };
    m.attempts += 1;
    let next = match &result {
        Ok(()) => {
            m.status = "delivered".into();
            now_ms()
        }
        Err(_) if m.attempts >= MAX_ATTEMPTS => {
            m.status = "failed".into();
            now_ms()
        }
        Err(_) => now_ms() + (1_000i64 << (m.attempts - 1).min(9)).min(300_000),
    };
    let error = result.err();
    if let Some(e) = &error {
        tracing::info!(channel = %m.channel, id = %m.id, attempt = m.attempts, error = %e, "delivery failed");
    }
    if let Err(e) = state
        .store
        .inbox_update(tenant, &m, next, error.as_deref())
        .await
    {
        tracing::warn!(error = %e, "recording a delivery");
    }
}

/// A chat service's answer (Slack, Telegram): success is a 2xx with `"ok": true`.
pub async fn api_ok(method: &str, r: reqwest::Response) -> Result<(), String> {
    let status = r.status();
    let answer: serde_json::Value = r.json().await.unwrap_or_default();
    if status.is_success() && answer["ok"] == true {
        Ok(())
    } else {
        Err(format!("{method}: {status} {answer}"))
    }
}

/// Store a message a chat service (Slack, Telegram) delivered and wake the worker. The
/// answer is 200 for a new message and for a redelivery (not answered twice); a 500 when it
/// could not be stored, so the service delivers it again later.
pub async fn accept_chat(
    state: &AppState,
    m: switchboard_channels::im::ImMessage,
    channel: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let m = InboxMessage::received(channel, m);
    match state
        .store
        .inbox_accept(&state.channel_tenant(channel), &m)
        .await
    {
        Ok(true) => state.webhook_work.notify_one(),
        Ok(false) => tracing::debug!(channel, id = %m.id, "a stored message was delivered again"),
        Err(e) => {
            tracing::error!(channel, error = %e, "storing a message");
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    axum::http::StatusCode::OK.into_response()
}

/// The 404 for a channel whose settings are not given.
pub fn channel_disabled(message: &str) -> axum::response::Response {
    crate::server::openai_error(
        axum::http::StatusCode::NOT_FOUND,
        "invalid_request_error",
        "channel_disabled",
        message,
    )
}

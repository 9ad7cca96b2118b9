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

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_channels::im::webhook::{parse_message, sign, verify};
use switchboard_channels::signing::unix_now;
use switchboard_pipeline::outbound::{OutboundError, OutboundRequest};

use crate::server::{AppState, invalid_request, openai_error};
use crate::store::inbox::InboxMessage;
use crate::store::now_ms;
use crate::turns::new_id;

pub const CHANNEL: &str = "webhook";
const MAX_BODY_BYTES: usize = 64 * 1024;
/// One callback attempt, redirects included.
const CALLBACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Webhook settings; the channel is off without a secret.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    pub secret: Option<String>,
    pub callback_url: Option<String>,
}

/// `POST /v1/webhooks/messages`.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(secret) = &state.webhook.secret else {
        return crate::inbox::channel_disabled(
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
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = verify(
        secret,
        unix_now(),
        header("x-switchboard-timestamp"),
        header("x-switchboard-signature"),
        &body,
    );
    if let Err(why) = signed {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_signature",
            why,
        );
    }
    let mut message = match parse_message(&body) {
        Ok(m) => InboxMessage::received(CHANNEL, m),
        Err(e) => return invalid_request(e.message, e.param, e.code),
    };
    let callback_url = message
        .reply_to
        .take()
        .or_else(|| state.webhook.callback_url.clone());
    let Some(callback_url) = callback_url.filter(|u| u.starts_with("http")) else {
        return invalid_request(
            "No 'callback_url' in the message and none configured.",
            "callback_url",
            "missing_required_parameter",
        );
    };
    // Refuse a callback the guard will never reach (internal addresses, bad schemes) now,
    // while the sender can still hear about it; a name that does not resolve yet may later.
    match state.outbound.vet(&callback_url).await {
        Ok(_) | Err(OutboundError::Network { .. }) => {}
        Err(e) => {
            tracing::warn!(error = %e, "webhook callback refused");
            return invalid_request(
                "'callback_url' is not an allowed destination (internal addresses need SWITCHBOARD_OUTBOUND_ALLOW).",
                "callback_url",
                "invalid_value",
            );
        }
    }
    message.reply_to = Some(callback_url);
    let tenant = state.channel_tenant(CHANNEL);
    match state.store.inbox_accept(&tenant, &message).await {
        Ok(true) => {
            state.webhook_work.notify_one();
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"id": message.id, "status": "accepted"})),
            )
                .into_response()
        }
        Ok(false) => {
            let status = state
                .store
                .inbox_get(&tenant, CHANNEL, &message.id)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "accepted".into());
            (
                StatusCode::OK,
                axum::Json(json!({"id": message.id, "status": status, "duplicate": true})),
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

/// Deliver an answer to the message's callback URL, signed like the messages we receive.
/// The URL came from outside, so it goes through the outbound guard like a tool's.
pub async fn deliver(state: &AppState, m: &InboxMessage) -> Result<(), String> {
    let (Some(url), Some(secret)) = (m.reply_to.as_deref(), state.webhook.secret.as_deref()) else {
        return Err("no callback URL or secret".into());
    };
    let body = json!({"id": new_id("msg"), "in_reply_to": m.id, "conversation": m.conversation,
        "user": m.user, "text": m.reply})
    .to_string();
    post_signed(
        state,
        url,
        secret,
        body,
        &format!("reply-{}", m.id),
        "callback",
    )
    .await
}

/// POST a JSON body signed like the messages we receive (`X-Switchboard-Timestamp`,
/// `X-Switchboard-Signature`), with an idempotency key, through the outbound guard.
/// Shared by webhook callbacks and human hand-offs; `what` names the call in errors.
pub async fn post_signed(
    state: &AppState,
    url: &str,
    secret: &str,
    body: String,
    idempotency_key: &str,
    what: &str,
) -> Result<(), String> {
    let ts = now_ms() / 1000;
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-switchboard-timestamp".to_owned(), ts.to_string()),
        (
            "x-switchboard-signature".to_owned(),
            sign(secret, ts, body.as_bytes()),
        ),
        ("idempotency-key".to_owned(), idempotency_key.to_owned()),
    ];
    let r = state
        .outbound
        .send(OutboundRequest {
            method: reqwest::Method::POST,
            url: url.to_owned(),
            headers,
            body: Some(body.into_bytes()),
            timeout: CALLBACK_TIMEOUT,
            max_bytes: 4096,
        })
        .await
        .map_err(|e| format!("{what} failed: {e}"))?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!("{what} answered {}", r.status))
    }
}

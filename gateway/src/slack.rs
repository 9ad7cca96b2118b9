//! Slack Events API: `POST /slack/events`. Requests are signed (`X-Slack-Signature: v0=hex
//! HMAC-SHA256(signing secret, "v0:{X-Slack-Request-Timestamp}:{body}")`, within 5 minutes,
//! else 401). `url_verification` echoes the challenge. `app_mention` and direct messages
//! (`message` in an `im`) are stored in the inbox under their `event_id` and acknowledged at
//! once (Slack wants an answer within 3 s); Slack's retries (`X-Slack-Retry-Num`) carry the
//! same `event_id`, so nothing is answered twice. Answers go back with `chat.postMessage` in
//! the message's thread. One session per thread.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_channels::im::slack::{SlackEvent, parse_event, verify};
use switchboard_channels::signing::unix_now;

use crate::server::{AppState, invalid_request, openai_error};
use crate::store::inbox::InboxMessage;

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub signing_secret: String,
    pub bot_token: String,
    /// `https://slack.com/api` (a local fake in tests).
    pub api_url: String,
}

pub async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(slack) = &state.slack else {
        return crate::inbox::channel_disabled(
            "Slack is off: set SWITCHBOARD_SLACK_SIGNING_SECRET and SWITCHBOARD_SLACK_BOT_TOKEN.",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = verify(
        &slack.signing_secret,
        unix_now(),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
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
    match parse_event(&body) {
        Ok(SlackEvent::UrlVerification { challenge }) => {
            axum::Json(json!({"challenge": challenge})).into_response()
        }
        Ok(SlackEvent::Message(m)) => crate::inbox::accept_chat(&state, m, "slack").await,
        Ok(SlackEvent::Ignored) => StatusCode::OK.into_response(),
        Err(e) => invalid_request(e.message, e.param, e.code),
    }
}

pub async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    m: &InboxMessage,
) -> Result<(), String> {
    let slack = state.slack.as_ref().ok_or("slack is not configured")?;
    let to = m.address()?;
    let body = json!({"channel": to["channel"], "thread_ts": to["thread_ts"], "text": m.reply});
    let r = client
        .post(format!(
            "{}/chat.postMessage",
            slack.api_url.trim_end_matches('/')
        ))
        .bearer_auth(&slack.bot_token)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("chat.postMessage failed: {e}"))?;
    crate::inbox::api_ok("chat.postMessage", r).await
}

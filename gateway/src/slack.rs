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
use serde_json::{Value, json};

use crate::server::{AppState, openai_error};
use crate::store::inbox::InboxMessage;
use crate::webhook::{fresh_and_equal, hmac_sha256_hex};

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub signing_secret: String,
    pub bot_token: String,
    /// `https://slack.com/api` (a local fake in tests).
    pub api_url: String,
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ts_text = get("x-slack-request-timestamp").ok_or("missing X-Slack-Request-Timestamp")?;
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| "malformed X-Slack-Request-Timestamp")?;
    let presented = get("x-slack-signature").ok_or("missing X-Slack-Signature")?;
    let expected = format!(
        "v0={}",
        hmac_sha256_hex(secret, &[b"v0:", ts_text.as_bytes(), b":", body])
    );
    fresh_and_equal(ts, &expected, presented)
}

/// Mentions of users and the bot (`<@U123>`) are not part of what was asked.
fn strip_mentions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        out.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
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
    if let Err(why) = verify(&slack.signing_secret, &headers, &body) {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_signature",
            why,
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match v["type"].as_str() {
        Some("url_verification") => {
            axum::Json(json!({"challenge": v["challenge"]})).into_response()
        }
        Some("event_callback") => {
            if let Some(m) = to_message(&v) {
                let tenant = state.channel_tenant("slack");
                match state.store.inbox_accept(&tenant, &m).await {
                    Ok(true) => state.webhook_work.notify_one(),
                    Ok(false) => tracing::debug!(event = %m.id, "slack retry of a stored event"),
                    // Not stored: a 500 makes Slack retry later.
                    Err(e) => {
                        tracing::error!(error = %e, "storing a slack event");
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                }
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

/// The message an event asks us to answer, if any (bots, edits and other events: none).
fn to_message(v: &Value) -> Option<InboxMessage> {
    let event_id = v["event_id"].as_str()?;
    let e = &v["event"];
    let kind = e["type"].as_str()?;
    let direct = kind == "message" && e["channel_type"] == "im";
    if !(kind == "app_mention" || direct) || e.get("bot_id").is_some() || e.get("subtype").is_some()
    {
        return None;
    }
    let channel = e["channel"].as_str()?;
    let ts = e["ts"].as_str()?;
    let thread = e["thread_ts"].as_str().unwrap_or(ts);
    let text = strip_mentions(e["text"].as_str()?);
    if text.is_empty() {
        return None;
    }
    Some(InboxMessage {
        channel: "slack".into(),
        id: event_id.to_owned(),
        conversation: format!("slack:{channel}:{thread}"),
        user: e["user"].as_str().map(|u| format!("slack:{u}")),
        text,
        reply_to: Some(json!({"channel": channel, "thread_ts": thread}).to_string()),
        status: "pending".into(),
        reply: None,
        attempts: 0,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(strip_mentions("<@U1> what is  up <@U2>?"), "what is up ?");
        assert_eq!(strip_mentions("no mention"), "no mention");
        assert_eq!(strip_mentions("broken <@U1"), "broken <@U1");
    }

    #[test]
    fn only_mentions_and_direct_messages_from_people_are_answered() {
        let ev = |e: Value| json!({"type": "event_callback", "event_id": "Ev1", "event": e});
        let m = to_message(&ev(
            json!({"type": "app_mention", "channel": "C1", "user": "U1",
            "text": "<@UBOT> hello", "ts": "1.5"}),
        ))
        .unwrap();
        assert_eq!(
            (m.text.as_str(), m.conversation.as_str()),
            ("hello", "slack:C1:1.5")
        );
        let threaded = to_message(&ev(
            json!({"type": "message", "channel_type": "im", "channel": "D1",
            "user": "U1", "text": "hi", "ts": "2.0", "thread_ts": "1.0"}),
        ))
        .unwrap();
        assert_eq!(threaded.conversation, "slack:D1:1.0");
        for ignored in [
            json!({"type": "message", "channel_type": "channel", "channel": "C1", "text": "x", "ts": "1"}),
            json!({"type": "app_mention", "bot_id": "B1", "channel": "C1", "text": "x", "ts": "1"}),
            json!({"type": "message", "channel_type": "im", "subtype": "message_changed", "channel": "D1", "text": "x", "ts": "1"}),
            json!({"type": "reaction_added"}),
        ] {
            assert!(to_message(&ev(ignored.clone())).is_none(), "{ignored}");
        }
    }
}

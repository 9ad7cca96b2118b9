//! Telegram bots: `POST /telegram/webhook`. Telegram sends the secret given to `setWebhook`
//! in `X-Telegram-Bot-Api-Secret-Token` (a mismatch is 403). Text messages are stored in
//! the inbox under their `update_id` (Telegram redelivers an update until it gets a 200, so
//! nothing is answered twice) and answered with `sendMessage`, replying to the message.
//! One session per chat. Voice notes are acknowledged and answered with a short text that
//! the bot reads text only (their transcription is not built yet).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::server::{AppState, openai_error};
use crate::store::inbox::InboxMessage;

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub bot_token: String,
    pub secret_token: String,
    /// `https://api.telegram.org` (a local fake in tests).
    pub api_url: String,
}

pub async fn webhook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(tg) = &state.telegram else {
        return openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "channel_disabled",
            "Telegram is off: set SWITCHBOARD_TELEGRAM_BOT_TOKEN and SWITCHBOARD_TELEGRAM_SECRET_TOKEN.",
        );
    };
    let presented = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same = presented.len() == tg.secret_token.len()
        && presented
            .bytes()
            .zip(tg.secret_token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return openai_error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "invalid_secret_token",
            "X-Telegram-Bot-Api-Secret-Token does not match.",
        );
    }
    let Ok(update) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(m) = to_message(&update) else {
        return StatusCode::OK.into_response();
    };
    match state.store.inbox_accept(&state.tenant, &m).await {
        Ok(true) => state.webhook_work.notify_one(),
        Ok(false) => tracing::debug!(update = %m.id, "telegram redelivered a stored update"),
        Err(e) => {
            tracing::error!(error = %e, "storing a telegram update");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    StatusCode::OK.into_response()
}

fn to_message(update: &Value) -> Option<InboxMessage> {
    let update_id = update["update_id"].as_i64()?;
    let msg = &update["message"];
    let chat = msg["chat"]["id"].as_i64()?;
    let text = match (msg["text"].as_str(), msg.get("voice")) {
        (Some(t), _) if !t.trim().is_empty() => t.trim().to_owned(),
        (_, Some(_)) => "[The user sent a voice note, which this bot cannot listen to yet. \
                         Ask them to type instead.]"
            .to_owned(),
        _ => return None,
    };
    Some(InboxMessage {
        channel: "telegram".into(),
        id: update_id.to_string(),
        conversation: format!("telegram:{chat}"),
        user: msg["from"]["id"].as_i64().map(|u| format!("telegram:{u}")),
        text,
        reply_to: Some(json!({"chat_id": chat, "reply_to": msg["message_id"]}).to_string()),
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
    let tg = state
        .telegram
        .as_ref()
        .ok_or("telegram is not configured")?;
    let to: Value = serde_json::from_str(m.reply_to.as_deref().unwrap_or("{}"))
        .map_err(|e| format!("bad telegram address: {e}"))?;
    let mut body = json!({"chat_id": to["chat_id"], "text": m.reply});
    if to["reply_to"].is_i64() {
        body["reply_parameters"] = json!({"message_id": to["reply_to"]});
    }
    let url = format!(
        "{}/bot{}/sendMessage",
        tg.api_url.trim_end_matches('/'),
        tg.bot_token
    );
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("sendMessage failed: {e}"))?;
    let status = r.status();
    let answer: Value = r.json().await.unwrap_or_default();
    if status.is_success() && answer["ok"] == true {
        Ok(())
    } else {
        Err(format!("sendMessage: {status} {answer}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_voice_updates_become_messages() {
        let m = to_message(&json!({"update_id": 7, "message": {"message_id": 3,
            "chat": {"id": 42}, "from": {"id": 9}, "text": " hi "}}))
        .unwrap();
        assert_eq!(
            (m.id.as_str(), m.conversation.as_str(), m.text.as_str()),
            ("7", "telegram:42", "hi")
        );
        assert_eq!(m.user.as_deref(), Some("telegram:9"));
        let voice = to_message(&json!({"update_id": 8, "message": {"message_id": 4,
            "chat": {"id": 42}, "voice": {"file_id": "f"}}}))
        .unwrap();
        assert!(voice.text.contains("voice note"));
        assert!(to_message(&json!({"update_id": 9, "edited_message": {}})).is_none());
    }
}

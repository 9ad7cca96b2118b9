//! Telegram bots: `POST /telegram/webhook`. Telegram sends the secret given to `setWebhook`
//! in `X-Telegram-Bot-Api-Secret-Token` (a mismatch is 403). Text messages are stored in
//! the inbox under their `update_id` (Telegram redelivers an update until it gets a 200, so
//! nothing is answered twice) and answered with `sendMessage`, replying to the message.
//! One session per chat. Voice notes (Ogg Opus) are fetched with `getFile`, decoded by our
//! Ogg reader and libopus, transcribed by Whisper, and answered like text.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_channels::im::telegram::parse_update;
use switchboard_channels::signing::constant_time_eq;

use crate::server::{AppState, invalid_request, openai_error};
use crate::store::inbox::InboxMessage;

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub bot_token: String,
    pub secret_token: String,
    /// `https://api.telegram.org` (a local fake in tests).
    pub api_url: String,
}

impl TelegramConfig {
    /// A Bot API method's URL.
    fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.api_url.trim_end_matches('/'),
            self.bot_token
        )
    }

    /// Where a file `getFile` named is downloaded from.
    fn file_url(&self, path: &str) -> String {
        format!(
            "{}/file/bot{}/{path}",
            self.api_url.trim_end_matches('/'),
            self.bot_token
        )
    }
}

pub async fn webhook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(tg) = &state.telegram else {
        return crate::inbox::channel_disabled(
            "Telegram is off: set SWITCHBOARD_TELEGRAM_BOT_TOKEN and SWITCHBOARD_TELEGRAM_SECRET_TOKEN.",
        );
    };
    let presented = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), tg.secret_token.as_bytes()) {
        return openai_error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "invalid_secret_token",
            "X-Telegram-Bot-Api-Secret-Token does not match.",
        );
    }
    match parse_update(&body) {
        Ok(Some(m)) => crate::inbox::accept_chat(&state, m, "telegram").await,
        Ok(None) => StatusCode::OK.into_response(),
        Err(e) => invalid_request(e.message, e.param, e.code),
    }
}

/// The words of a voice note: `getFile`, download, Ogg Opus decode, Whisper.
pub async fn voice_text(
    state: &AppState,
    client: &reqwest::Client,
    m: &InboxMessage,
) -> Result<String, String> {
    let tg = state
        .telegram
        .as_ref()
        .ok_or("telegram is not configured")?;
    let to = m.address()?;
    let file_id = to["voice"].as_str().ok_or("no voice file")?;
    let file: Value = client
        .post(tg.method_url("getFile"))
        .header("content-type", "application/json")
        .body(json!({"file_id": file_id}).to_string())
        .send()
        .await
        .map_err(|e| format!("getFile failed: {e}"))?
        .json()
        .await
        .map_err(|e| format!("getFile answer: {e}"))?;
    let path = file["result"]["file_path"]
        .as_str()
        .ok_or_else(|| format!("getFile: {file}"))?;
    let bytes = client
        .get(tg.file_url(path))
        .send()
        .await
        .map_err(|e| format!("voice download failed: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("voice download failed: {e}"))?;
    let engines = state.engines().ok_or("speech engines still loading")?;
    let audio = tokio::task::spawn_blocking(move || {
        switchboard_models::audio::decode::decode(&bytes, Some("oga"))
            .and_then(|a| a.to_rate(switchboard_models::stt::STT_SAMPLE_RATE))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("voice note: {e}"))?;
    use switchboard_models::stt::{Priority, SpeechToText, TranscribeOptions};
    let t = engines
        .stt
        .transcribe(audio.samples, TranscribeOptions::at(Priority::Batch))
        .await
        .map_err(|e| format!("transcription failed: {e}"))?;
    Ok(t.text.trim().to_owned())
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
    let to = m.address()?;
    let personas = &state.orchestrator.personas;
    let persona = personas.pick(personas.channel("telegram").persona.as_deref());
    if to["voice"].is_string() && persona.voice_notes {
        return send_voice(state, client, tg, &to, m.reply.as_deref().unwrap_or("")).await;
    }
    let mut body = json!({"chat_id": to["chat_id"], "text": m.reply});
    if to["reply_to"].is_i64() {
        body["reply_parameters"] = json!({"message_id": to["reply_to"]});
    }
    let url = tg.method_url("sendMessage");
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("sendMessage failed: {e}"))?;
    crate::inbox::api_ok("sendMessage", r).await
}

/// Answer with a voice note: our TTS, our Ogg Opus writer, `sendVoice` (multipart).
async fn send_voice(
    state: &AppState,
    client: &reqwest::Client,
    tg: &TelegramConfig,
    to: &Value,
    text: &str,
) -> Result<(), String> {
    let engines = state.engines().ok_or("speech engines still loading")?;
    let ogg = crate::audio::speak_ogg_opus(engines, text).await?;
    let boundary = format!("switchboard{:016x}", rand::random::<u64>());
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("chat_id", &to["chat_id"].to_string());
    if to["reply_to"].is_i64() {
        field(
            "reply_parameters",
            &json!({"message_id": to["reply_to"]}).to_string(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"voice\"; filename=\"reply.ogg\"\r\nContent-Type: audio/ogg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(ogg);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let url = tg.method_url("sendVoice");
    let r = client
        .post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("sendVoice failed: {e}"))?;
    crate::inbox::api_ok("sendVoice", r).await
}

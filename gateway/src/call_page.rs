//! The browser call page at `/`: static assets compiled into the binary (no CDN), and the
//! page's own secret endpoint.
//!
//! The page never sees an API key. It asks `POST /call-page/secret` for a one-call client
//! secret, which this endpoint mints the way an application's backend would. That makes
//! the page a door for anyone who can reach it, so it is served only when the operator
//! wants it: by default when no API keys are configured (a loopback-only gateway), or with
//! `--call-page on`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::server::{AppState, openai_error};

const INDEX_HTML: &str = include_str!("../web/index.html");
const CALL_JS: &str = include_str!("../web/call.js");
const CALL_CSS: &str = include_str!("../web/call.css");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/call.js", get(script))
        .route("/call.css", get(style))
        .route("/call-page/secret", post(secret))
}

fn disabled() -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "call_page_disabled",
        "The call page is off on this gateway (--call-page).",
    )
}

fn asset(state: &AppState, content_type: &'static str, body: &'static str) -> Response {
    if !state.call_page {
        return disabled();
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(state): State<Arc<AppState>>) -> Response {
    asset(&state, "text/html; charset=utf-8", INDEX_HTML)
}

async fn script(State(state): State<Arc<AppState>>) -> Response {
    asset(&state, "text/javascript; charset=utf-8", CALL_JS)
}

async fn style(State(state): State<Arc<AppState>>) -> Response {
    asset(&state, "text/css; charset=utf-8", CALL_CSS)
}

/// `POST /call-page/secret` `{"persona"?, "user"?, "turn_detection"?}`: a client secret for
/// one call, valid for a minute. `turn_detection` is the session's (checked as a
/// `session.update` would check it).
async fn secret(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    if !state.call_page {
        return disabled();
    }
    let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut request = json!({"expires_after": {"anchor": "created_at", "seconds": 60}});
    if let Some(persona) = asked.get("persona").and_then(Value::as_str)
        && state.orchestrator.personas.get(persona).is_some()
    {
        request["session"]["model"] = json!(persona);
    }
    if let Some(td) = asked.get("turn_detection") {
        request["session"]["audio"] = json!({"input": {"turn_detection": td}});
    }
    if let Some(user) = asked.get("user").and_then(Value::as_str)
        && !user.trim().is_empty()
    {
        request["user"] = json!(user);
    }
    match crate::client_secrets::mint_from_body(
        &state.secrets,
        crate::store::DEFAULT_TENANT,
        &request,
        state.stt_model(),
    )
    .await
    {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

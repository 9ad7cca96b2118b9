//! `GET /v1/realtime`: the OpenAI Realtime API over WebSocket.
//!
//! Query parameters: `model` (echoed; a persona's name selects that persona), `persona`,
//! and `user` (the end user, whose memory and profile the call uses).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_channels::realtime::{RealtimeSession, websocket};
use switchboard_pipeline::{SessionConfig, spawn_call};

use switchboard_channels::chat_request::is_identifier;

use crate::auth;
use crate::server::{AppState, openai_error};

pub async fn connect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(denied) = auth::require(&state.api_keys, &headers) {
        return denied;
    }
    let persona = query
        .get("persona")
        .or_else(|| query.get("model"))
        .filter(|p| state.orchestrator.personas.get(p).is_some())
        .cloned();
    let user = query
        .get("user")
        .map(|u| u.trim().to_owned())
        .filter(|u| is_identifier(u));
    let Some(deps) = state.call_deps(persona, user) else {
        return openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "not_ready",
            "The speech engines are still loading; retry shortly.",
        );
    };
    let Ok(permit) = Arc::clone(&state.call_slots).try_acquire_owned() else {
        return openai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "server_error",
            "overloaded",
            "The gateway is at its call limit; try again shortly.",
        );
    };
    let model = query
        .get("model")
        .cloned()
        .unwrap_or_else(|| "switchboard-realtime".into());
    let metrics = state.call_metrics.clone();
    // Browsers authenticate with a subprotocol; the "realtime" one must then be echoed.
    let ws = ws
        .max_message_size(websocket::MAX_FRAME_BYTES)
        .protocols(["realtime"]);
    ws.on_upgrade(move |socket| async move {
        let config = SessionConfig::default();
        let call = spawn_call(deps, config.clone());
        let session = RealtimeSession::new(call.id.clone(), model, config);
        websocket::serve(socket, call, session, metrics).await;
        drop(permit);
    })
    .into_response()
}

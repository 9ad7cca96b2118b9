//! Control of live calls from outside them, on whichever instance holds the call
//! (`registry/`): `GET /v1/calls` lists the tenant's live calls; `POST /v1/calls/{id}/hangup`
//! (also OpenAI's `/v1/realtime/calls/{id}/hangup`), `/messages` (inject a system or user
//! message, optionally answered at once) and `/transfer` (phone calls). Another tenant's
//! call answers 404, the same as no call.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Scope;
use crate::registry::{ControlAction, ControlError, control};
use crate::server::{AppState, invalid_request, openai_error};

/// `GET /v1/calls`.
pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let principal = match state.auth.require(&headers, Scope::Realtime).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let calls = state.registry.list(&principal.tenant).await;
    let data: Vec<_> = calls
        .iter()
        .map(|c| {
            json!({"id": c.id, "object": "realtime.call", "channel": c.channel,
                "instance": c.instance, "started_at": c.started_ms / 1000})
        })
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn act(
    state: &AppState,
    headers: &HeaderMap,
    call_id: &str,
    action: ControlAction,
) -> Response {
    let principal = match state.auth.require(headers, Scope::Realtime).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    match state
        .registry
        .control(&principal.tenant, call_id, action)
        .await
    {
        Ok(route) => Json(json!({"id": call_id, "delivered": route})).into_response(),
        Err(ControlError::NotFound) => openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "call_not_found",
            &format!("No call '{call_id}' is in progress."),
        ),
        Err(ControlError::Unsupported(why)) => {
            invalid_request(why, "call_id", "unsupported_call_action")
        }
        Err(ControlError::Failed(why)) => openai_error(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "call_control_failed",
            &why,
        ),
    }
}

/// `POST /v1/calls/{id}/hangup` and `POST /v1/realtime/calls/{id}/hangup`.
pub async fn hang_up(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Response {
    act(&state, &headers, &call_id, ControlAction::Hangup).await
}

/// `POST /v1/calls/{id}/messages` `{"role": "system"|"user", "text", "respond"?}`.
pub async fn message(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    match control::parse_message(&body) {
        Ok(action) => act(&state, &headers, &call_id, action).await,
        Err(e) => invalid_request(e.message, e.param, "invalid_value"),
    }
}

/// `POST /v1/calls/{id}/transfer` `{"to": "+15550100"}`.
pub async fn transfer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    match control::parse_transfer(&body) {
        Ok(action) => act(&state, &headers, &call_id, action).await,
        Err(e) => invalid_request(e.message, e.param, "invalid_value"),
    }
}

//! `GET /v1/chat/ws`: text chat for web widgets over a WebSocket (protocol in
//! `switchboard_channels::chat_ws`). Query parameters: `session_id` (continue a stored
//! session's record; new otherwise), `user`, `persona`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use switchboard_channels::chat_request::is_identifier;
use switchboard_channels::chat_ws::{self, ChatSession, protocol};

use crate::auth::Scope;
use crate::server::{AppState, invalid_request};
use crate::turns::{CallTurns, SessionInfo, new_id};

fn identifier(query: &HashMap<String, String>, name: &str) -> Result<Option<String>, Response> {
    match query.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) if is_identifier(v) => Ok(Some(v.to_owned())),
        Some(_) => Err(invalid_request(
            format!("{name} must be 1 to 200 characters without control characters"),
            name,
            "invalid_value",
        )),
    }
}

pub async fn connect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Chat).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let (session_id, user, persona) = match (
        identifier(&query, "session_id"),
        identifier(&query, "user"),
        identifier(&query, "persona"),
    ) {
        (Ok(s), Ok(u), Ok(p)) => (s.unwrap_or_else(|| new_id("sess")), u, p),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    if let Some(p) = &persona
        && state.orchestrator.personas.get(p).is_none()
    {
        return invalid_request(format!("unknown persona '{p}'"), "persona", "invalid_value");
    }
    let persona_name = state
        .orchestrator
        .personas
        .pick(persona.as_deref())
        .name
        .clone();
    let sink = CallTurns::new(
        state.turns.clone(),
        SessionInfo {
            tenant: principal.tenant.clone(),
            session_id: session_id.clone(),
            channel: "chat_ws",
            user: user.clone(),
            persona: Some(persona_name),
        },
    );
    let session = ChatSession {
        session_id,
        tenant: principal.tenant.clone(),
        user,
        persona,
        orchestrator: state.orchestrator.clone(),
        sink: Arc::new(sink),
    };
    ws.max_message_size(2 * protocol::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| chat_ws::serve(socket, session))
        .into_response()
}

//! `GET /v1/realtime`: the OpenAI Realtime API over WebSocket.
//!
//! Query parameters: `model` (echoed; a persona's name selects that persona), `persona`,
//! `user` (the end user, whose memory and profile the call uses), and
//! `intent=transcription` (a transcription session: turns are transcribed, never answered).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_channels::chat_request::is_identifier;
use switchboard_channels::realtime::{RealtimeSession, websocket};
use switchboard_pipeline::{CallDeps, SessionConfig, spawn_call};
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::Scope;
use crate::registry::TenantSlot;
use crate::server::{AppState, invalid_request, openai_error};

/// Who a new Realtime call is for, from its URL (`persona`, `model`, `user`).
#[derive(Debug, Clone, Default)]
pub struct CallTarget {
    /// Whose call it is.
    pub tenant: String,
    /// How the call came in, as stored with its session: `realtime`, `webrtc`, `phone`.
    pub channel: &'static str,
    pub persona: Option<String>,
    pub user: Option<String>,
    pub model: String,
    /// `intent=transcription`: the session starts as a transcription session.
    pub transcription_only: bool,
}

impl CallTarget {
    /// `persona` must name a configured persona (400 otherwise); `model` selects one only
    /// when it names one (clients send their usual model names).
    pub fn from_query(
        state: &AppState,
        tenant: &str,
        query: &HashMap<String, String>,
    ) -> Result<Self, Response> {
        if let Some(p) = query.get("persona")
            && state.orchestrator.personas.get(p).is_none()
        {
            return Err(invalid_request(
                format!("unknown persona '{p}'"),
                "persona",
                "invalid_value",
            ));
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
        let model = query
            .get("model")
            .cloned()
            .unwrap_or_else(|| "switchboard-realtime".into());
        Ok(Self {
            tenant: tenant.to_owned(),
            channel: "realtime",
            persona,
            user,
            model,
            transcription_only: query.get("intent").is_some_and(|i| i == "transcription"),
        })
    }
}

/// A tenant's place for one more call (`SWITCHBOARD_MAX_CALLS_PER_TENANT`), or the 429.
pub async fn admit_tenant(state: &AppState, tenant: &str) -> Result<TenantSlot, Response> {
    state.registry.admit(tenant).await.map_err(|max| {
        openai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            &format!("This organization has its {max} concurrent calls; try again when one ends."),
        )
    })
}

/// Admit a new call: its dependencies and its slot, or the 503/429 to answer.
pub fn admit(
    state: &AppState,
    target: &CallTarget,
) -> Result<(CallDeps, OwnedSemaphorePermit), Response> {
    if state.is_draining() {
        return Err(openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "shutting_down",
            "This gateway is shutting down; connect again to reach another instance.",
        ));
    }
    let Some(deps) = state.call_deps(
        &target.tenant,
        target.channel,
        target.persona.clone(),
        target.user.clone(),
    ) else {
        return Err(openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "not_ready",
            "The speech engines are still loading; retry shortly.",
        ));
    };
    let Ok(permit) = Arc::clone(&state.call_slots).try_acquire_owned() else {
        return Err(openai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "server_error",
            "overloaded",
            "The gateway is at its call limit; try again shortly.",
        ));
    };
    Ok((deps, permit))
}

pub async fn connect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Realtime).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let target = match CallTarget::from_query(&state, &principal.tenant, &query) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (deps, permit) = match admit(&state, &target) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let slot = match admit_tenant(&state, &target.tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let metrics = state.call_metrics.clone();
    let registry = Arc::clone(&state.registry);
    let limiter = Arc::clone(&state.limiter);
    // Browsers authenticate with a subprotocol; the "realtime" one must then be echoed.
    let ws = ws
        .max_message_size(websocket::MAX_FRAME_BYTES)
        .protocols(["realtime"]);
    ws.on_upgrade(move |socket| async move {
        let config = SessionConfig {
            transcription_only: target.transcription_only,
            ..SessionConfig::default()
        };
        let (transcription_model, multilingual) =
            (deps.stt.model().to_owned(), deps.stt.multilingual());
        let call = spawn_call(deps, config.clone());
        let registration = registry.register(
            slot,
            &call.id,
            "realtime",
            call.commands.clone(),
            None,
            None,
        );
        let session = RealtimeSession::new(call.id.clone(), target.model, config)
            .transcribed_by(&transcription_model, multilingual);
        let limits = limiter.call_limits(
            format!("{}:{}", target.tenant, call.id),
            target.tenant.clone(),
        );
        websocket::serve(socket, call, session, metrics, limits).await;
        drop(registration);
        drop(permit);
    })
    .into_response()
}

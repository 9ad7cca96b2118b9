//! Server-side tools in the gateway: the tool engine built from the persona file and the
//! outbound allow-list, its pending actions kept in the database, and the APIs around them.
//!
//! - `GET /v1/actions?session_id=&status=&limit=` and `GET /v1/actions/{id}`: pending and
//!   settled actions (the arguments the caller approved are in `prompt`; raw arguments stay
//!   in the database).
//! - `POST /v1/actions/{id}/approve` | `/reject`: approve (the tool runs now and its answer
//!   is returned) or reject; the session's next turn tells the model how it ended. An
//!   expired action is `410 action_expired`, a settled one `409 action_already_resolved`.
//! - `GET /v1/admin/audit?session_id=&kind=tool.&limit=`: the audit log, newest first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Args;
use serde_json::json;
use switchboard_pipeline::metrics::CallMetrics;
use switchboard_pipeline::outbound::OutboundPolicy;
use switchboard_pipeline::persona::Personas;
use switchboard_pipeline::tools::engine::{Resolution, ResolveError};
use switchboard_pipeline::tools::mcp::McpHub;
use switchboard_pipeline::tools::{ToolAudit, ToolEngine, ToolEngineConfig};

use crate::auth::Scope;
use crate::registry::{ControlAction, ControlError};
use crate::server::{AppState, openai_error};
use crate::sessions::{authorized_limit, db_failed, list_of, not_found, object};
use crate::store::Store;
use crate::turns::TurnLog;

/// Server-side tools and outbound requests.
#[derive(Debug, Args, Clone)]
pub struct ToolArgs {
    /// Internal destinations tools and webhook callbacks may reach, comma-separated:
    /// `10.0.0.0/8`, `192.168.1.5`, `127.0.0.1:9000`. Everything else private, loopback,
    /// link-local (cloud metadata), multicast or reserved is refused.
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: String,
    /// How long a change waits for the caller's approval before it is cancelled.
    #[arg(long, env = "SWITCHBOARD_ACTION_TTL_SECS", default_value_t = 1800)]
    pub action_ttl_secs: u64,
    /// Signs hand-off webhooks (`escalate_to_human`); needed when a persona has a
    /// `handoff.webhook_url`.
    #[arg(long, env = "SWITCHBOARD_HANDOFF_SECRET", hide_env_values = true)]
    pub handoff_secret: Option<String>,
    /// Let Realtime clients declare remote MCP servers in their sessions (`{"type": "mcp"}`
    /// tools), which the gateway then calls, within the outbound allow-list.
    #[arg(long, env = "SWITCHBOARD_CLIENT_MCP", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub client_mcp: bool,
}

impl ToolAudit for TurnLog {
    fn record(&self, tenant: &str, session: Option<&str>, kind: &str, detail: serde_json::Value) {
        self.audit(tenant, session, kind, detail);
    }
}

/// The tool engine, with its expiry sweep running.
pub fn engine(
    args: &ToolArgs,
    personas: &Personas,
    store: &Store,
    turns: &TurnLog,
    metrics: &CallMetrics,
    wake: &Arc<tokio::sync::Notify>,
) -> anyhow::Result<Arc<ToolEngine>> {
    let (tools, mcp) = (personas.tools(), personas.mcp_servers());
    let hands_off = personas
        .names()
        .filter_map(|n| personas.get(n))
        .any(|p| p.handoff.as_ref().is_some_and(|h| h.webhook_url.is_some()));
    if hands_off && args.handoff_secret.is_none() {
        anyhow::bail!(
            "a persona hands off to a webhook: set SWITCHBOARD_HANDOFF_SECRET to sign it"
        );
    }
    let policy = OutboundPolicy::parse(&args.outbound_allow).map_err(anyhow::Error::msg)?;
    if args.action_ttl_secs == 0 {
        anyhow::bail!("SWITCHBOARD_ACTION_TTL_SECS must be at least 1");
    }
    let ttl = Duration::from_secs(args.action_ttl_secs);
    let engine = Arc::new(ToolEngine::new(ToolEngineConfig {
        tools: tools.clone(),
        policy,
        action_ttl: ttl,
        actions: Arc::new(store.clone()),
        audit: Some(Arc::new(turns.clone())),
        metrics: Some(metrics.clone()),
        client_mcp: args.client_mcp,
        handoff: Some(Arc::new(crate::handoff::HandoffInbox {
            store: store.clone(),
            turns: turns.clone(),
            wake: Arc::clone(wake),
        })),
    }));
    // MCP servers connect in the background: a slow one must not hold up start-up, and its
    // tools appear once listed.
    if !mcp.is_empty() {
        let engine = Arc::clone(&engine);
        let mcp = mcp.clone();
        tokio::spawn(async move {
            let (hub, tools) = McpHub::connect(&mcp, engine.outbound().clone()).await;
            engine.attach_mcp(hub, tools);
        });
    }
    // Expiry is checked again at approval, so the sweep only has to be timely for notices.
    engine.spawn_expiry(ttl.min(Duration::from_secs(5)).max(Duration::from_secs(1)) / 2);
    tracing::info!(
        tools = tools.len(),
        ttl_secs = args.action_ttl_secs,
        "tool engine ready"
    );
    Ok(engine)
}

/// A live call whose pending action expires hears it at once: the sweep asks the call (on
/// whichever instance holds it) for a response once the agent has finished its current
/// sentence; that response's tool loop tells the model how the action ended ("not
/// confirmed in time, nothing was done, offer to start again") and marks it reported, so
/// the next turn does not repeat it. Nothing is added to the conversation that later turns
/// would read again. Sessions that are not live calls (chat, IM) hear it on their next turn.
pub fn announce_expiries(engine: &ToolEngine, registry: Arc<crate::registry::Registry>) {
    engine.on_expiry(Arc::new(move |action| {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            match registry
                .control(&action.tenant, &action.session_id, ControlAction::Respond)
                .await
            {
                Ok(route) => {
                    tracing::info!(action = %action.id, route, "expiry told to the live call")
                }
                Err(ControlError::NotFound) => {} // not a live call: its next turn tells it
                Err(e) => tracing::warn!(action = %action.id, error = ?e, "expiry notice failed"),
            }
        });
    }));
}

fn tools(state: &AppState) -> Result<&Arc<ToolEngine>, Response> {
    state.orchestrator.tools.as_ref().ok_or_else(|| {
        openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "tools_disabled",
            "Server-side tools are not enabled.",
        )
    })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (principal, limit) = match authorized_limit(&state, &headers, &query).await {
        Ok(l) => l,
        Err(refused) => return refused,
    };
    let session = query.get("session_id").map(String::as_str);
    let status = query.get("status").map(String::as_str);
    match state
        .store
        .list_actions(&principal.tenant, session, status, limit)
        .await
    {
        Ok(actions) => list_of(&actions, "action"),
        Err(e) => db_failed(e),
    }
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let engine = match tools(&state) {
        Ok(e) => e,
        Err(r) => return r,
    };
    match engine.actions().get(&principal.tenant, &id).await {
        Ok(Some(a)) => Json(object(&a, "action")).into_response(),
        Ok(None) => not_found("action", &id),
        Err(e) => {
            tracing::error!(error = %e, "reading an action failed");
            db_failed(crate::store::StoreError::Corrupt(e))
        }
    }
}

pub async fn approve(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Response {
    decide(state, headers, id, true).await
}

pub async fn reject(state: State<Arc<AppState>>, headers: HeaderMap, id: Path<String>) -> Response {
    decide(state, headers, id, false).await
}

async fn decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    approve: bool,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let engine = match tools(&state) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let conflict = |status: StatusCode, code: &str, message: String| {
        openai_error(status, "invalid_request_error", code, &message)
    };
    match engine.resolve(&principal.tenant, &id, approve, "api").await {
        Ok(Resolution::Executed { action, output }) => {
            let mut v = object(&action, "action");
            v["output"] = json!({"content": output.content, "error": output.error, "http_status": output.status});
            Json(v).into_response()
        }
        Ok(Resolution::Rejected(action)) => Json(object(&action, "action")).into_response(),
        Err(ResolveError::NotFound) => not_found("action", &id),
        Err(ResolveError::Expired(_)) => conflict(
            StatusCode::GONE,
            "action_expired",
            format!(
                "Action '{id}' expired before it was approved; it was cancelled and did not run."
            ),
        ),
        Err(ResolveError::AlreadyResolved(a)) => conflict(
            StatusCode::CONFLICT,
            "action_already_resolved",
            format!("Action '{id}' is already {}.", a.status.as_str()),
        ),
        Err(ResolveError::Store(e)) => db_failed(crate::store::StoreError::Corrupt(e)),
    }
}

pub async fn audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (principal, limit) = match authorized_limit(&state, &headers, &query).await {
        Ok(l) => l,
        Err(refused) => return refused,
    };
    let session = query.get("session_id").map(String::as_str);
    let kind = query.get("kind").map(String::as_str);
    match state
        .store
        .list_audit(&principal.tenant, session, kind, limit)
        .await
    {
        Ok(events) => list_of(&events, "audit_event"),
        Err(e) => db_failed(e),
    }
}

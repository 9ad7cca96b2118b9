//! The sessions API (stored calls and chats) and the per-user profile and memory API.
//!
//! - `GET /v1/sessions?limit=N` (newest first), `GET /v1/sessions/{id}` (with messages,
//!   tool calls and the rolling summary of older messages), `DELETE /v1/sessions/{id}`.
//! - `GET|PUT /v1/users/{user}/profile` (`{"attributes": {...}}`; PUT replaces).
//! - `GET|DELETE /v1/users/{user}/memories`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{Principal, Scope};
use crate::server::{AppState, invalid_request, openai_error};
use crate::store::{Profile, StoreError, now_ms};

const MAX_LIMIT: i64 = 1000;
/// Largest profile accepted, as JSON.
const MAX_PROFILE_BYTES: usize = 64 * 1024;

pub(crate) fn db_failed(e: StoreError) -> Response {
    tracing::error!(error = %e, "database request failed");
    openai_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "database_unavailable",
        "The database could not answer; try again shortly.",
    )
}

/// A stored record as an API object: its fields plus `"object": kind`.
pub(crate) fn object(record: &impl serde::Serialize, kind: &str) -> Value {
    let mut v = json!(record);
    v["object"] = json!(kind);
    v
}

/// A list response of stored records.
pub(crate) fn list_of<T: serde::Serialize>(records: &[T], kind: &str) -> Response {
    let data: Vec<Value> = records.iter().map(|r| object(r, kind)).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(crate) fn not_found(what: &str, id: &str) -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        &format!("{what}_not_found"),
        &format!("No {what} with id '{id}'."),
    )
}

/// The admin key check, then `?limit=` (1 to 1000, default 100): the caller and the limit,
/// or the 401/403/400.
pub(crate) async fn authorized_limit(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(Principal, i64), Response> {
    let principal = state.auth.require(headers, Scope::Admin).await?;
    match query.get("limit").map(|l| l.parse::<i64>()) {
        None => Ok((principal, 100)),
        Some(Ok(l)) if (1..=MAX_LIMIT).contains(&l) => Ok((principal, l)),
        Some(_) => Err(invalid_request(
            format!("limit must be 1 to {MAX_LIMIT}"),
            "limit",
            "invalid_value",
        )),
    }
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
    match state.store.list_sessions(&principal.tenant, limit).await {
        Ok(sessions) => list_of(&sessions, "session"),
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
    let session = match state.store.get_session(&principal.tenant, &id).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found("session", &id),
        Err(e) => return db_failed(e),
    };
    let messages = match state.store.messages(&principal.tenant, &id).await {
        Ok(m) => m,
        Err(e) => return db_failed(e),
    };
    let tool_calls = match state.store.tool_calls(&principal.tenant, &id).await {
        Ok(t) => t,
        Err(e) => return db_failed(e),
    };
    let summary = match state.store.session_summary(&principal.tenant, &id).await {
        Ok(s) => s,
        Err(e) => return db_failed(e),
    };
    let mut v = object(&session, "session");
    v["messages"] = json!(messages);
    v["tool_calls"] = json!(tool_calls);
    // The rolling summary of the older messages, once the session is long enough to have one.
    v["summary"] = json!(summary.as_ref().map(|(text, _)| text));
    v["summarized_messages"] = json!(summary.map_or(0, |(_, n)| n));
    Json(v).into_response()
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    match state.store.delete_session(&principal.tenant, &id).await {
        Ok(true) => {
            state.turns.audit(
                &principal.tenant,
                Some(&id),
                "session.deleted",
                json!({"id": id}),
            );
            Json(json!({"id": id, "object": "session.deleted", "deleted": true})).into_response()
        }
        Ok(false) => not_found("session", &id),
        Err(e) => db_failed(e),
    }
}

fn profile_json(p: &Profile) -> Value {
    json!({"object": "profile", "user_id": p.user_id, "attributes": p.attributes, "updated_at": p.updated_at})
}

pub async fn get_profile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    match state.store.get_profile(&principal.tenant, &user).await {
        Ok(Some(p)) => Json(profile_json(&p)).into_response(),
        Ok(None) => not_found("profile", &user),
        Err(e) => db_failed(e),
    }
}

pub async fn put_profile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    if body.len() > MAX_PROFILE_BYTES {
        let err = json!({"error": {"message": format!("A profile is at most {} KB.", MAX_PROFILE_BYTES / 1024),
            "type": "invalid_request_error", "param": "attributes", "code": "profile_too_large"}});
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(err)).into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid_request("The body must be a JSON object.", "body", "invalid_json");
    };
    let Some(Value::Object(attributes)) = body.get("attributes").cloned() else {
        let err = json!({"error": {"message": "'attributes' must be a JSON object of profile attributes.",
            "type": "invalid_request_error", "param": "attributes", "code": "invalid_value"}});
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(err)).into_response();
    };
    let profile = Profile {
        user_id: user,
        attributes,
        updated_at: now_ms(),
    };
    match state.store.put_profile(&principal.tenant, &profile).await {
        Ok(()) => {
            state.turns.audit(
                &principal.tenant,
                None,
                "profile.replaced",
                json!({"user_id": profile.user_id, "attributes": profile.attributes.keys().collect::<Vec<_>>()}),
            );
            Json(profile_json(&profile)).into_response()
        }
        Err(e) => db_failed(e),
    }
}

pub async fn memories(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    match state.store.memories(&principal.tenant, &user).await {
        Ok(memories) => list_of(&memories, "memory"),
        Err(e) => db_failed(e),
    }
}

pub async fn forget(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    match state.store.delete_memories(&principal.tenant, &user).await {
        Ok(n) => {
            state.turns.audit(
                &principal.tenant,
                None,
                "memory.forgotten",
                json!({"user_id": user, "deleted": n}),
            );
            Json(json!({"object": "memory.deleted", "user_id": user, "deleted": n})).into_response()
        }
        Err(e) => db_failed(e),
    }
}

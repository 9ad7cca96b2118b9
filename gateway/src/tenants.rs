//! Tenants and their API keys over HTTP. `/v1/admin/tenants` needs an operator key
//! (`SWITCHBOARD_API_KEYS`); `/v1/admin/keys` needs the `admin` scope and manages the
//! caller's own tenant's keys (an operator may name any tenant). A key is shown once, in
//! the answer that creates it. Another tenant's key answers 404, as if it did not exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{Principal, Scope, Scopes, keys};
use crate::server::{AppState, invalid_request, openai_error};
use crate::sessions::{db_failed, list_of, not_found, object};
use crate::store::keys::StoredKey;
use crate::store::{Store, StoreError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no tenant '{0}' (create it first)")]
    UnknownTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Make a key for an existing tenant: the key itself (to show once) and what is stored.
pub async fn create_key(
    store: &Store,
    tenant: &str,
    name: &str,
    scopes: Scopes,
    expires_at: Option<i64>,
) -> Result<(String, StoredKey), KeyError> {
    if !store.tenant_exists(tenant).await? {
        return Err(KeyError::UnknownTenant(tenant.to_owned()));
    }
    let made = keys::generate();
    let stored = StoredKey {
        id: made.id,
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        secret_sha256: made.secret_sha256,
        scopes: scopes.render(),
        created_at: now_ms(),
        expires_at,
        revoked_at: None,
    };
    store.insert_key(&stored).await?;
    Ok((made.key, stored))
}

fn operator_only() -> Response {
    openai_error(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        "insufficient_scope",
        "Managing tenants needs an operator key (SWITCHBOARD_API_KEYS).",
    )
}

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    if body.is_empty() {
        return Ok(Default::default());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid_request(
            "The body must be a JSON object.",
            "body",
            "invalid_json",
        )),
    }
}

/// `POST /v1/admin/tenants` `{"id": "acme", "name": "Acme Inc."}`.
pub async fn create_tenant(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    if !principal.operator {
        return operator_only();
    }
    let body = match json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(id) = body
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| keys::valid_tenant_id(id))
    else {
        return invalid_request(
            "id must be 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit.",
            "id",
            "invalid_value",
        );
    };
    let name = body.get("name").and_then(Value::as_str).unwrap_or(id);
    match state.store.create_tenant(id, name).await {
        Ok(true) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "object": "tenant", "name": name})),
        )
            .into_response(),
        Ok(false) => openai_error(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "tenant_exists",
            &format!("A tenant '{id}' exists."),
        ),
        Err(e) => db_failed(e),
    }
}

/// `GET /v1/admin/tenants`.
pub async fn list_tenants(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) if p.operator => {}
        Ok(_) => return operator_only(),
        Err(denied) => return denied,
    }
    match state.store.list_tenants().await {
        Ok(t) => list_of(&t, "tenant"),
        Err(e) => db_failed(e),
    }
}

/// The tenant a key request is about: the caller's own, or for an operator the one named.
/// Naming another tenant without operator rights is the same 404 as a tenant that does not
/// exist.
fn target_tenant(principal: &Principal, named: Option<&str>) -> Result<String, Response> {
    match named {
        None => Ok(principal.tenant.clone()),
        Some(t) if t == principal.tenant || principal.operator => Ok(t.to_owned()),
        Some(t) => Err(not_found("tenant", t)),
    }
}

/// `POST /v1/admin/keys` `{"name", "scopes": ["chat", ...], "expires_in_seconds"?, "tenant"?}`.
/// Scopes default to the caller's and may not exceed them.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let body = match json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let tenant = match target_tenant(&principal, body.get("tenant").and_then(Value::as_str)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let name = match body.get("name") {
        Some(Value::String(n)) if (1..=100).contains(&n.trim().len()) => n.trim().to_owned(),
        _ => {
            return invalid_request(
                "name must be 1 to 100 characters.",
                "name",
                "missing_required_parameter",
            );
        }
    };
    let scopes = match body.get("scopes") {
        None => principal.scopes,
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            match Scopes::parse(&names.join(" ")) {
                Ok(s) => s,
                Err(e) => return invalid_request(e, "scopes", "invalid_value"),
            }
        }
        Some(_) => {
            return invalid_request(
                "scopes must be a list of scope names.",
                "scopes",
                "invalid_value",
            );
        }
    };
    if scopes == Scopes::default() {
        return invalid_request("a key needs at least one scope.", "scopes", "invalid_value");
    }
    if !scopes.is_subset_of(principal.scopes) {
        return openai_error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "insufficient_scope",
            "A key cannot grant scopes its creator lacks.",
        );
    }
    let expires_at = match body.get("expires_in_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(s) if (1..=10 * 365 * 86_400).contains(&s) => Some(now_ms() + s * 1000),
            _ => {
                return invalid_request(
                    "expires_in_seconds must be an integer from 1 to 315360000.",
                    "expires_in_seconds",
                    "invalid_value",
                );
            }
        },
    };
    match create_key(&state.store, &tenant, &name, scopes, expires_at).await {
        Ok((key, stored)) => {
            state.turns.audit(
                &tenant,
                None,
                "api_key.created",
                json!({"id": stored.id, "name": stored.name, "scopes": stored.scopes}),
            );
            let mut v = key_object(&stored);
            v["key"] = json!(key);
            (StatusCode::CREATED, Json(v)).into_response()
        }
        Err(KeyError::UnknownTenant(t)) => not_found("tenant", &t),
        Err(KeyError::Store(e)) => db_failed(e),
    }
}

fn key_object(k: &StoredKey) -> Value {
    let mut v = object(k, "api_key");
    v["scopes"] = json!(
        k.scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    );
    v
}

/// `GET /v1/admin/keys[?tenant=]`: the tenant's keys, without their secrets.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let tenant = match target_tenant(&principal, query.get("tenant").map(String::as_str)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match state.store.list_keys(&tenant).await {
        Ok(keys) => {
            let data: Vec<Value> = keys.iter().map(key_object).collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => db_failed(e),
    }
}

/// `DELETE /v1/admin/keys/{id}`: revoke at once (other instances within the key cache's 5 s).
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let tenant = if principal.operator {
        match state.store.key_by_id(&id).await {
            Ok(Some(k)) => k.tenant,
            Ok(None) => return not_found("api_key", &id),
            Err(e) => return db_failed(e),
        }
    } else {
        principal.tenant.clone()
    };
    match state.store.revoke_key(&tenant, &id).await {
        Ok(true) => {
            state.auth.forget(&id);
            state
                .turns
                .audit(&tenant, None, "api_key.revoked", json!({"id": id}));
            Json(json!({"id": id, "object": "api_key.revoked", "revoked": true})).into_response()
        }
        Ok(false) => not_found("api_key", &id),
        Err(e) => db_failed(e),
    }
}

//! OpenAPI import with a review step:
//!
//! - `POST /v1/admin/openapi/import?persona=NAME&base_url=URL` with an OpenAPI 3 document
//!   (JSON or YAML) as the body: proposes one tool per operation, side-effect levels
//!   inferred, and stores the proposals; nothing is live yet (201 with the import).
//! - `GET /v1/admin/openapi/imports/{id}`: the import again.
//! - `POST /v1/admin/openapi/imports/{id}/approve` with `{"tools": ["getOrder"],
//!   "effects": {"getOrder": "read"}}` (both optional: all tools, levels as proposed): the
//!   chosen tools become live for the persona at once, and after restarts.
//! - `GET /v1/admin/tools?persona=NAME`: the server-side tools a persona has now.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_pipeline::tools::SideEffect;
use switchboard_pipeline::tools::openapi::{self, OpenApiError};

use crate::auth::Scope;
use crate::server::{AppState, invalid_request, openai_error};
use crate::sessions::{db_failed, not_found, object};
use crate::turns::new_id;

fn persona_param(state: &AppState, query: &HashMap<String, String>) -> Result<String, Response> {
    let persona = query
        .get("persona")
        .cloned()
        .unwrap_or_else(|| state.orchestrator.personas.pick(None).name.clone());
    if state.orchestrator.personas.get(&persona).is_none() {
        return Err(invalid_request(
            format!("No persona named '{persona}'."),
            "persona",
            "invalid_value",
        ));
    }
    Ok(persona)
}

pub async fn import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let persona = match persona_param(&state, &query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return invalid_request(
            "The document must be UTF-8 JSON or YAML.",
            "body",
            "invalid_openapi",
        );
    };
    let proposals = match openapi::propose(text, query.get("base_url").map(String::as_str)) {
        Ok(p) if p.is_empty() => {
            return invalid_request(
                "The document has no operations to turn into tools.",
                "body",
                "invalid_openapi",
            );
        }
        Ok(p) => p,
        Err(e @ OpenApiError::TooLarge) => {
            return openai_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "document_too_large",
                &e.to_string(),
            );
        }
        Err(e @ OpenApiError::NoBaseUrl) => {
            return invalid_request(e.to_string(), "base_url", "missing_required_parameter");
        }
        Err(e) => return invalid_request(e.to_string(), "body", "invalid_openapi"),
    };
    let title = serde_yaml_title(text);
    let id = new_id("imp");
    if let Err(e) = state
        .store
        .create_tool_import(&principal.tenant, &id, &persona, &title, &proposals)
        .await
    {
        return db_failed(e);
    }
    state.turns.audit(
        &principal.tenant,
        None,
        "tool.import_proposed",
        json!({"import_id": id, "persona": persona, "title": title, "tools": proposals.iter().map(|p| &p.tool.name).collect::<Vec<_>>()}),
    );
    let v = json!({"object": "tool_import", "id": id, "persona": persona, "title": title,
                   "status": "proposed", "proposals": proposals});
    (StatusCode::CREATED, Json(v)).into_response()
}

/// The document's `info.title`, for the record.
fn serde_yaml_title(text: &str) -> String {
    let doc: Option<Value> = serde_json::from_str(text)
        .ok()
        .or_else(|| serde_yaml_ng::from_str(text).ok());
    doc.and_then(|d| {
        d.pointer("/info/title")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
    .unwrap_or_default()
    .chars()
    .take(200)
    .collect()
}

pub async fn get_import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    match state.store.tool_import(&principal.tenant, &id).await {
        Ok(Some(i)) => Json(object(&i, "tool_import")).into_response(),
        Ok(None) => not_found("tool_import", &id),
        Err(e) => db_failed(e),
    }
}

pub async fn approve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let Some(engine) = state.orchestrator.tools.clone() else {
        return openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "tools_disabled",
            "Server-side tools are not enabled.",
        );
    };
    let choice: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return invalid_request("The body must be a JSON object.", "body", "invalid_json"),
        }
    };
    let import = match state.store.tool_import(&principal.tenant, &id).await {
        Ok(Some(i)) => i,
        Ok(None) => return not_found("tool_import", &id),
        Err(e) => return db_failed(e),
    };
    let mut tools = match import.tools() {
        Ok(t) => t,
        Err(e) => return db_failed(e),
    };
    if let Some(names) = choice.get("tools") {
        let Some(names) = names
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        else {
            return invalid_request(
                "'tools' must be a list of tool names.",
                "tools",
                "invalid_value",
            );
        };
        if let Some(unknown) = names.iter().find(|n| !tools.iter().any(|t| t.name == **n)) {
            return invalid_request(
                format!("The import proposes no tool '{unknown}'."),
                "tools",
                "invalid_value",
            );
        }
        tools.retain(|t| names.contains(&t.name.as_str()));
    }
    let effects: BTreeMap<String, SideEffect> = match choice
        .get("effects")
        .map(|e| serde_json::from_value(e.clone()))
    {
        None => BTreeMap::new(),
        Some(Ok(e)) => e,
        Some(Err(_)) => {
            return invalid_request(
                "'effects' maps tool names to read, write or dangerous.",
                "effects",
                "invalid_value",
            );
        }
    };
    for t in &mut tools {
        if let Some(e) = effects.get(&t.name) {
            t.effect = *e;
        }
    }
    if let Err(e) = state
        .store
        .install_tools(&principal.tenant, &id, &import.persona, &tools)
        .await
    {
        return db_failed(e);
    }
    engine.install(&principal.tenant, &import.persona, tools.clone());
    let installed: Vec<Value> = tools
        .iter()
        .map(|t| json!({"name": t.name, "effect": t.effect.as_str(), "target": t.target()}))
        .collect();
    state.turns.audit(
        &principal.tenant,
        None,
        "tool.import_approved",
        json!({"import_id": id, "persona": import.persona, "tools": installed}),
    );
    Json(json!({"object": "tool_import", "id": id, "persona": import.persona, "status": "approved", "installed": installed})).into_response()
}

pub async fn list_tools(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let persona = match persona_param(&state, &query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let tools = state
        .orchestrator
        .tools
        .as_ref()
        .map(|e| {
            e.tools_for(
                &principal.tenant,
                state.orchestrator.personas.pick(Some(&persona)),
            )
        })
        .unwrap_or_default();
    let data: Vec<Value> = tools
        .iter()
        .map(|t| json!({"object": "tool", "name": t.name, "description": t.description, "effect": t.effect.as_str(),
                        "parameters": t.parameters, "target": t.target(), "timeout_ms": t.timeout_ms}))
        .collect();
    Json(json!({"object": "list", "persona": persona, "data": data})).into_response()
}

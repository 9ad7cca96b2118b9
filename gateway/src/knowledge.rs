//! The knowledge API: upload, list and delete a tenant's documents, and search them.
//!
//! - `POST /v1/knowledge/documents`: multipart with `file` (text/plain, text/markdown or
//!   text/html; 10 MB at most) and an optional `id` (default: the file name). The same id
//!   again replaces the document.
//! - `GET /v1/knowledge/documents`, `DELETE /v1/knowledge/documents/{id}`.
//! - `POST /v1/knowledge/search`: `{"query", "k"?, "mode"?: "hybrid"|"bm25"|"dense"}`.
//!
//! A document's text is stored in the database first, then indexed; the index can always be
//! rebuilt from the database.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_pipeline::context::knowledge::{
    DocError, DocKind, DocumentInfo, KnowledgeIndex, SearchMode, to_text,
};

use switchboard_channels::chat_request::is_identifier;

use crate::auth::Scope;
use crate::server::{AppState, invalid_request, openai_error};
use crate::store::{Document, now_ms};

/// Largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// Most chunks a search returns.
const MAX_K: usize = 50;

fn document_json(d: &DocumentInfo) -> Value {
    json!({"id": d.doc_id, "object": "knowledge.document", "filename": d.filename,
           "chunks": d.chunks, "created_at": d.created_at})
}

/// The index, or the 503 that says it is not loaded yet.
fn index(state: &AppState) -> Result<&KnowledgeIndex, Response> {
    state.knowledge.get().ok_or_else(|| {
        openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "knowledge_unavailable",
            "The knowledge index is still loading; try again shortly.",
        )
    })
}

fn index_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "knowledge index failed");
    openai_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "knowledge_index_error",
        "The knowledge index could not complete the request.",
    )
}

struct Upload {
    bytes: Vec<u8>,
    filename: Option<String>,
    content_type: Option<String>,
    id: Option<String>,
}

async fn read_upload(mut form: Multipart) -> Result<Upload, Response> {
    let mut up = Upload {
        bytes: Vec::new(),
        filename: None,
        content_type: None,
        id: None,
    };
    let mut has_file = false;
    while let Some(mut field) = crate::upload::next_field(&mut form).await? {
        match field.name().unwrap_or_default() {
            "file" => {
                up.filename = field.file_name().map(str::to_owned);
                up.content_type = field.content_type().map(str::to_owned);
                up.bytes = crate::upload::read_file_field(&mut field, MAX_DOCUMENT_BYTES).await?;
                has_file = true;
            }
            "id" => {
                up.id = field
                    .text()
                    .await
                    .ok()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty());
            }
            _ => {}
        }
    }
    if !has_file {
        return Err(invalid_request(
            "Missing required parameter: 'file'.",
            "file",
            "missing_required_parameter",
        ));
    }
    Ok(up)
}

pub async fn upload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let index = match index(&state) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let form = match crate::upload::multipart(form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut up = match read_upload(form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let kind = match DocKind::detect(up.content_type.as_deref(), up.filename.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            let body = json!({"error": {"message": e.to_string(), "type": "invalid_request_error", "param": "file", "code": "unsupported_file_type"}});
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response();
        }
    };
    // PDF parsing is CPU work (and untrusted input): on a blocking thread.
    let bytes = std::mem::take(&mut up.bytes);
    let (text, bytes) =
        match tokio::task::spawn_blocking(move || (to_text(&bytes, kind), bytes)).await {
            Ok((text, bytes)) => (text, bytes),
            Err(_) => (Err(DocError::Pdf("the parser failed".into())), Vec::new()),
        };
    let text = match text {
        Ok(t) => t,
        Err(
            e @ (DocError::NotUtf8 | DocError::Empty | DocError::Unsupported(_) | DocError::Pdf(_)),
        ) => {
            let body = json!({"error": {"message": e.to_string(), "type": "invalid_request_error", "param": "file", "code": "invalid_file"}});
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
    };
    let filename = up.filename.unwrap_or_else(|| "document".into());
    let id = up.id.unwrap_or_else(|| filename.clone());
    if !is_identifier(&id) {
        return invalid_request(
            "Document ids are 1 to 200 characters without control characters.",
            "id",
            "invalid_value",
        );
    }
    let tenant = principal.tenant.as_str();
    let stored = Document {
        id: id.clone(),
        filename: filename.clone(),
        content_type: kind.mime().into(),
        bytes: bytes.len() as i64,
        text: text.clone(),
        created_at: now_ms(),
    };
    if let Err(e) = state.store.put_document(tenant, &stored).await {
        return index_failed(e);
    }
    match index.add_document(tenant, &id, &filename, &text).await {
        Ok(_) => {}
        Err(e) => return index_failed(e),
    }
    let doc = index.documents(tenant).into_iter().find(|d| d.doc_id == id);
    state.turns.audit(
        tenant,
        None,
        "knowledge.document.uploaded",
        json!({"id": id, "filename": filename, "bytes": bytes.len()}),
    );
    match doc {
        Some(d) => (StatusCode::CREATED, Json(document_json(&d))).into_response(),
        None => index_failed("document vanished after indexing"),
    }
}

pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let principal = match state.auth.require(&headers, Scope::Admin).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let index = match index(&state) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let data: Vec<Value> = index
        .documents(&principal.tenant)
        .iter()
        .map(document_json)
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
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
    let index = match index(&state) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let in_db = match state.store.delete_document(&principal.tenant, &id).await {
        Ok(found) => found,
        Err(e) => return index_failed(e),
    };
    match index
        .remove_document(&principal.tenant, &id)
        .await
        .map(|found| found || in_db)
    {
        Ok(true) => {
            state.turns.audit(
                &principal.tenant,
                None,
                "knowledge.document.deleted",
                json!({"id": id}),
            );
            Json(json!({"id": id, "object": "knowledge.document.deleted", "deleted": true}))
                .into_response()
        }
        Ok(false) => openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "document_not_found",
            &format!("No document with id '{id}'."),
        ),
        Err(e) => index_failed(e),
    }
}

pub async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let principal = match state.auth.require(&headers, Scope::Chat).await {
        Ok(p) => p,
        Err(denied) => return denied,
    };
    let index = match index(&state) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid_request("The body must be a JSON object.", "body", "invalid_json");
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return invalid_request(
            "Missing required parameter: 'query'.",
            "query",
            "missing_required_parameter",
        );
    };
    let k = match body.get("k") {
        None => 5,
        Some(v) => match v.as_u64().filter(|k| (1..=MAX_K as u64).contains(k)) {
            Some(k) => k as usize,
            None => {
                return invalid_request(format!("'k' must be 1 to {MAX_K}."), "k", "invalid_value");
            }
        },
    };
    let mode = match body.get("mode").and_then(Value::as_str).unwrap_or("hybrid") {
        "hybrid" => SearchMode::Hybrid,
        "bm25" => SearchMode::Bm25,
        "dense" => SearchMode::Dense,
        other => {
            return invalid_request(
                format!("unknown mode '{other}': use hybrid, bm25 or dense"),
                "mode",
                "invalid_value",
            );
        }
    };
    match index.search(&principal.tenant, query, k, mode).await {
        Ok(hits) => {
            let data: Vec<Value> = hits
                .iter()
                .map(|h| json!({"document_id": h.doc_id, "heading": h.heading, "text": h.text, "score": h.score}))
                .collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => index_failed(e),
    }
}

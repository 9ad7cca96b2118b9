//! `POST /v1/realtime/calls`: OpenAI's Realtime WebRTC signalling. The body is the SDP offer
//! (`application/sdp`), or a multipart form with `sdp` and `session` (a session object
//! applied before the call starts). The answer is `201 Created`, `application/sdp`, with the
//! call's URL in `Location`. Authenticated with an API key or a one-call client secret.
//! Hang-up and other control of live calls: `calls.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use switchboard_channels::realtime::RealtimeSession;
use switchboard_channels::webrtc::{self, codec::RATE, offer::MAX_OFFER_BYTES};
use switchboard_pipeline::spawn_call;

use crate::auth::{self, Scope};
use crate::client_secrets::{Grant, is_client_secret};
use crate::realtime::{CallTarget, admit, admit_tenant};
use crate::server::{AppState, invalid_request, openai_error};

/// The offer and session a request carries.
struct CallRequest {
    sdp: String,
    session: Option<Value>,
}

pub async fn create_call(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (tenant, grant) = match authenticate(&state, &headers).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let body = match read_body(&headers, request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut target = match CallTarget::from_query(&state, &tenant, &query) {
        Ok(t) => t,
        Err(r) => return r,
    };
    target.channel = "webrtc";
    let mut session = RealtimeSession::new(String::new(), target.model.clone(), Default::default())
        .with_media_rate(RATE);
    // The model is known before the session is applied, so a `language` is checked against it.
    if let Some(stt) = state.stt_model() {
        session = session.transcribed_by(stt.name, stt.multilingual);
    }
    let grant = grant.unwrap_or(Grant {
        tenant: tenant.clone(),
        session: None,
        user: None,
    });
    for s in grant.session.iter().chain(body.session.iter()) {
        session = match session.apply(s) {
            Ok(next) => next,
            Err(e) => {
                return invalid_request(e.message, e.param.as_deref().unwrap_or("session"), e.code);
            }
        };
    }
    if state.orchestrator.personas.get(&session.model).is_some() {
        target.persona = Some(session.model.clone());
    }
    // A secret's user was pinned by the server that minted it; the URL cannot change it.
    if grant.user.is_some() {
        target.user = grant.user;
    }
    let (deps, permit) = match admit(&state, &target) {
        Ok(x) => x,
        Err(r) => return r,
    };
    session = session.transcribed_by(deps.stt.model(), deps.stt.multilingual());
    let slot = match admit_tenant(&state, &target.tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let peer = match webrtc::answer(&state.webrtc, &body.sdp).await {
        Ok(p) => p,
        Err(e) => {
            let status = if e.is_client_error() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let kind = if e.is_client_error() {
                "invalid_request_error"
            } else {
                "server_error"
            };
            return openai_error(status, kind, e.code(), &e.to_string());
        }
    };
    let answer = peer.answer.clone();
    state
        .webrtc_metrics
        .answer_seconds
        .observe(peer.answer_time.as_secs_f64());
    let call = spawn_call(deps, session.config.clone());
    session.id = call.id.clone();
    let location = format!("/v1/realtime/calls/{}", call.id);
    let (metrics, media_metrics) = (state.call_metrics.clone(), state.webrtc_metrics.clone());
    let (hangup_tx, hangup) = tokio::sync::oneshot::channel();
    let limits = state.limiter.call_limits(
        format!("{}:{}", target.tenant, call.id),
        target.tenant.clone(),
    );
    let registration = state.registry.register(
        slot,
        &call.id,
        "webrtc",
        call.commands.clone(),
        Some(hangup_tx),
        None,
    );
    tokio::spawn(async move {
        webrtc::serve(peer, call, session, metrics, media_metrics, hangup, limits).await;
        drop(registration);
        drop(permit);
    });
    let mut response = (StatusCode::CREATED, answer).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    response
}

/// An API key, or a client secret redeemed for this one call (`Some(grant)`): the call's
/// tenant and the grant.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, Option<Grant>), Response> {
    if let Some(token) = auth::presented_key(headers)
        && is_client_secret(&token)
    {
        return state
            .secrets
            .redeem(&token)
            .await
            .map(|g| (g.tenant.clone(), Some(g)))
            .map_err(|refusal| refusal.response());
    }
    let principal = state.auth.require(headers, Scope::Realtime).await?;
    Ok((principal.tenant, None))
}

async fn read_body(headers: &HeaderMap, request: Request) -> Result<CallRequest, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let form = Multipart::from_request(request, &()).await.map_err(|e| {
            invalid_request(format!("bad multipart body: {e}"), "sdp", "invalid_value")
        })?;
        return read_form(form).await;
    }
    if !(content_type.is_empty()
        || content_type.starts_with("application/sdp")
        || content_type.starts_with("text/plain"))
    {
        return Err(openai_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "unsupported_media_type",
            "Send the SDP offer as application/sdp, or multipart/form-data with 'sdp' and 'session'.",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), MAX_OFFER_BYTES + 1)
        .await
        .map_err(|_| too_large())?;
    Ok(CallRequest {
        sdp: sdp_text(&bytes)?,
        session: None,
    })
}

async fn read_form(mut form: Multipart) -> Result<CallRequest, Response> {
    let (mut sdp, mut session) = (None, None);
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| invalid_request(format!("bad multipart body: {e}"), "sdp", "invalid_value"))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = crate::upload::read_file_field(&mut field, MAX_OFFER_BYTES).await?;
        match name.as_str() {
            "sdp" => sdp = Some(sdp_text(&bytes)?),
            "session" => {
                session = Some(serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                    invalid_request(
                        format!("'session' must be a JSON session object: {e}"),
                        "session",
                        "invalid_json",
                    )
                })?);
            }
            _ => {}
        }
    }
    let sdp = sdp.ok_or_else(|| {
        invalid_request(
            "The form has no 'sdp' field with the offer.",
            "sdp",
            "missing_required_parameter",
        )
    })?;
    Ok(CallRequest { sdp, session })
}

fn sdp_text(bytes: &[u8]) -> Result<String, Response> {
    if bytes.len() > MAX_OFFER_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| invalid_request("The SDP offer is not UTF-8 text.", "sdp", "invalid_sdp"))
}

fn too_large() -> Response {
    openai_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "invalid_sdp",
        "The SDP offer is larger than 64 KB.",
    )
}

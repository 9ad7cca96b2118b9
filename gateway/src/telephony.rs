//! Phone calls: the Twilio voice webhook answering with TwiML that connects the call to our
//! media stream, and the stream endpoints for Twilio and Telnyx.
//!
//! - `POST /telephony/twilio/voice` (form body from Twilio) → `<Connect><Stream>` to
//!   `/telephony/twilio/stream`, passing the caller's number (the call's end user: memory and
//!   profile follow the caller), the call SID and `?persona=` as stream parameters.
//! - `GET /telephony/twilio/stream`, `GET /telephony/telnyx/stream`: the media WebSockets.
//!
//! With `SWITCHBOARD_TWILIO_AUTH_TOKEN` set, every Twilio request (webhook and stream
//! upgrade) must carry a valid `X-Twilio-Signature`, else 403. The URL signed is the one
//! Twilio used: `SWITCHBOARD_PUBLIC_URL` plus the path, or the request's own host and
//! `X-Forwarded-Proto`. Telnyx streams must present an API key as `?token=` when keys are set.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use switchboard_channels::telephony::{self, Dialect, DtmfAction, DtmfMap, signature};
use switchboard_pipeline::tools::builtin;
use switchboard_pipeline::{SessionConfig, TurnDetection, spawn_call};

use crate::auth::Scope;
use crate::realtime::{CallTarget, admit, admit_tenant};
use crate::registry::ProviderControl;
use crate::server::{AppState, openai_error};

/// Telephony settings.
#[derive(Debug, Clone, Default)]
pub struct TelephonyConfig {
    /// Twilio's auth token; when set, signatures are required.
    pub twilio_auth_token: Option<String>,
    /// The gateway's public base URL (`https://voice.example.com`), as the providers see it.
    pub public_url: Option<String>,
    /// Twilio's account SID, for call control through its REST API (with the auth token).
    pub twilio_account_sid: Option<String>,
    /// Twilio's REST API base (`https://api.twilio.com`; a local stand-in in tests).
    pub twilio_api_url: String,
    /// Telnyx API key, for call control.
    pub telnyx_api_key: Option<String>,
    /// Telnyx's API base (`https://api.telnyx.com`).
    pub telnyx_api_url: String,
}

fn forbidden(message: &str) -> Response {
    openai_error(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        "invalid_signature",
        message,
    )
}

/// The URL the provider requested: configured public base, else this request's host.
fn requested_url(
    config: &TelephonyConfig,
    headers: &HeaderMap,
    path_and_query: &str,
    ws: bool,
) -> String {
    if let Some(base) = &config.public_url {
        let base = base.trim_end_matches('/');
        let base = if ws {
            base.replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1)
        } else {
            base.to_owned()
        };
        return format!("{base}{path_and_query}");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let scheme = match (ws, secure) {
        (true, true) => "wss",
        (true, false) => "ws",
        (false, true) => "https",
        (false, false) => "http",
    };
    format!("{scheme}://{host}{path_and_query}")
}

fn check_twilio(
    config: &TelephonyConfig,
    headers: &HeaderMap,
    url: &str,
    params: &[(String, String)],
) -> Result<(), Response> {
    let Some(token) = &config.twilio_auth_token else {
        return Ok(());
    };
    let presented = headers
        .get("x-twilio-signature")
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| forbidden("Missing X-Twilio-Signature."))?;
    if signature::twilio_valid(token, url, params, presented) {
        Ok(())
    } else {
        Err(forbidden("X-Twilio-Signature does not match this request."))
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `POST /telephony/twilio/voice`: TwiML connecting the call to our media stream.
pub async fn twilio_voice(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let params: Vec<(String, String)> = form_urlencoded_pairs(&body);
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = requested_url(&state.telephony, &headers, path_and_query, false);
    if let Err(denied) = check_twilio(&state.telephony, &headers, &url, &params) {
        return denied;
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let stream_url = requested_url(&state.telephony, &headers, "/telephony/twilio/stream", true);
    let mut parameters = String::new();
    let mut add = |name: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            parameters.push_str(&format!(
                "<Parameter name=\"{}\" value=\"{}\"/>",
                xml_escape(name),
                xml_escape(v)
            ));
        }
    };
    add("callSid", get("CallSid"));
    add("from", get("From"));
    add("persona", query.get("persona").map(String::as_str));
    let twiml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{}\">{parameters}</Stream></Connect></Response>",
        xml_escape(&stream_url)
    );
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], twiml).into_response()
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `GET /telephony/twilio/stream`.
pub async fn twilio_stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = requested_url(&state.telephony, &headers, path_and_query, true);
    if let Err(denied) = check_twilio(&state.telephony, &headers, &url, &[]) {
        return denied;
    }
    // Twilio's signature authenticates the provider, which serves the tenant the persona
    // file binds the phone channel to (`[channels.phone]`), else the default tenant.
    let tenant = state.channel_tenant("phone");
    upgrade(state, ws, Dialect::Twilio, tenant).await
}

/// `GET /telephony/telnyx/stream?token=KEY`.
pub async fn telnyx_stream(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let refused = || {
        openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Telnyx streams must carry an API key as ?token=.",
        )
    };
    // No token is anonymous, which only open mode accepts.
    let token = query.get("token").map_or("", String::as_str);
    let principal = match state.auth.token(token).await {
        Ok(p) => p,
        Err(_) => return refused(),
    };
    if !principal.scopes.contains(Scope::Realtime) {
        return crate::auth::missing_scope(Scope::Realtime);
    }
    upgrade(state, ws, Dialect::Telnyx, principal.tenant).await
}

/// The persona's keypad map: a value naming one of its tools (server-side or built-in) forces
/// that tool; anything else is what the caller means.
fn dtmf_map(state: &AppState, tenant: &str, persona: Option<&str>) -> DtmfMap {
    let persona = state.orchestrator.personas.pick(persona);
    let mut tools: Vec<String> = state
        .orchestrator
        .tools
        .as_ref()
        .map(|e| {
            e.tools_for(tenant, persona)
                .into_iter()
                .map(|t| t.name)
                .collect()
        })
        .unwrap_or_default();
    tools.extend(
        builtin::tools_for(persona, "phone")
            .into_iter()
            .map(|t| t.name),
    );
    persona
        .dtmf
        .iter()
        .filter_map(|(k, v)| {
            let digit = k.chars().next()?;
            let action = if tools.contains(v) {
                DtmfAction::Tool(v.clone())
            } else {
                DtmfAction::Say(v.clone())
            };
            Some((digit, action))
        })
        .collect()
}

async fn upgrade(
    state: Arc<AppState>,
    ws: WebSocketUpgrade,
    dialect: Dialect,
    tenant: String,
) -> Response {
    let slot = match admit_tenant(&state, &tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let metrics = state.call_metrics.clone();
    let control = crate::call_control::hook(state.telephony.clone(), dialect);
    let provider_configured = match dialect {
        Dialect::Twilio => {
            state.telephony.twilio_account_sid.is_some()
                && state.telephony.twilio_auth_token.is_some()
        }
        Dialect::Telnyx => state.telephony.telnyx_api_key.is_some(),
    };
    ws.on_upgrade(move |socket| async move {
        let mut held = None;
        let mut slot = Some(slot);
        let hook = control.clone();
        telephony::serve(socket, dialect, metrics, control, |start| {
            let personas = &state.orchestrator.personas;
            let persona = start
                .parameters
                .get("persona")
                .filter(|p| personas.get(p).is_some())
                .cloned()
                .or_else(|| personas.channel("phone").persona);
            let user = start
                .parameters
                .get("from")
                .or_else(|| start.parameters.get("user"))
                .map(|u| u.trim().to_owned())
                .filter(|u| switchboard_channels::chat_request::is_identifier(u));
            let target = CallTarget {
                tenant: tenant.clone(),
                channel: "phone",
                model: "switchboard-phone".into(),
                persona,
                user,
                transcription_only: false,
            };
            let dtmf = dtmf_map(&state, &tenant, target.persona.as_deref());
            let (deps, permit) = admit(&state, &target).ok()?;
            let persona = personas.pick(target.persona.as_deref());
            let config = SessionConfig {
                input_rate: start.format.rate(),
                output_rate: start.format.rate(),
                noise_reduction: persona.noise_reduction,
                turn_detection: Some(TurnDetection {
                    eagerness: persona.turn_eagerness,
                    ..TurnDetection::default()
                }),
                ..SessionConfig::default()
            };
            let call = spawn_call(deps, config);
            // Hang-up and transfer from outside go through the provider when it is configured.
            let provider: Option<ProviderControl> = provider_configured.then(|| {
                let (hook, start) = (hook.clone(), start.clone());
                Arc::new(move |c| hook(start.clone(), c)) as ProviderControl
            });
            let registration = state.registry.register(
                slot.take()?,
                &call.id,
                "phone",
                call.commands.clone(),
                None,
                provider,
            );
            held = Some((permit, registration));
            Some((call, dtmf))
        })
        .await;
        drop(held);
    })
    .into_response()
}

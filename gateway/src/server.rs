//! The HTTP server: health, readiness, metrics, and the call routes.
//!
//! Engines load in the background after the socket is bound, so `/healthz` answers at once
//! and `/readyz` says 503 (with the reason) until speech can be served.

use std::sync::{Arc, OnceLock, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchboard_models::llm::LocalLlm;
use switchboard_models::stt::SpeechToText;
use switchboard_pipeline::CallDeps;
use switchboard_pipeline::llm::LlmProvider;
use switchboard_pipeline::metrics::CallMetrics;

use crate::cli::ServeArgs;
use crate::engines::Engines;
use crate::metrics::Metrics;

pub struct AppState {
    engines: OnceLock<Engines>,
    /// Why the engines are not ready ("loading" until the first attempt ends).
    not_ready: RwLock<Option<String>>,
    metrics: Metrics,
    pub call_metrics: CallMetrics,
    pub llm: Arc<dyn LlmProvider>,
    /// The embedded model, once loaded (a provider in `llm` when configured so).
    pub local_llm: Arc<OnceLock<LocalLlm>>,
    /// Whether readiness waits for the embedded model.
    embedded_in_use: bool,
    pub api_keys: Vec<String>,
    /// Model ids `/v1/models` lists.
    pub model_names: Vec<String>,
    /// Admission: one permit per live call.
    pub call_slots: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// The speech engines, once loaded.
    pub fn engines(&self) -> Option<&Engines> {
        self.engines.get()
    }

    /// What a new call needs, once the engines are loaded.
    pub fn call_deps(&self) -> Option<CallDeps> {
        let e = self.engines.get()?;
        Some(CallDeps {
            stt: e.stt.clone(),
            tts: e.tts.clone(),
            vad: e.vad.clone(),
            llm: self.llm.clone(),
            metrics: self.call_metrics.clone(),
        })
    }
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
pub fn openai_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

/// A 400 in OpenAI's shape naming the bad `param` (and an error `code`, when there is one).
pub fn invalid_request(
    message: impl Into<String>,
    param: &str,
    code: impl Into<Option<&'static str>>,
) -> Response {
    let body = serde_json::json!({"error": {"message": message.into(), "type": "invalid_request_error",
        "param": param, "code": code.into()}});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let keys: Vec<String> = args
        .api_keys
        .iter()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() && !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {} without API keys: set SWITCHBOARD_API_KEYS (or --api-key), or listen on 127.0.0.1",
            args.listen
        );
    }
    if keys.is_empty() {
        tracing::warn!(
            "no API keys configured: accepting unauthenticated clients on loopback only"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, keys))
}

async fn serve(args: ServeArgs, api_keys: Vec<String>) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let call_metrics = CallMetrics::register(metrics.registry())?;
    let local_llm = Arc::new(OnceLock::new());
    let chain = crate::llm::providers(&args.llm, &call_metrics, &local_llm);
    let state = Arc::new(AppState {
        engines: OnceLock::new(),
        not_ready: RwLock::new(Some("loading models".into())),
        metrics,
        call_metrics,
        llm: chain.provider,
        local_llm,
        embedded_in_use: chain.uses_embedded,
        model_names: chain.model_names,
        api_keys,
        call_slots: Arc::new(tokio::sync::Semaphore::new(args.max_calls)),
    });
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/realtime", get(crate::realtime::connect))
        .route("/v1/models", get(crate::chat::models))
        .route(
            "/v1/chat/completions",
            axum::routing::post(crate::chat::completions),
        )
        .route(
            "/v1/audio/speech",
            axum::routing::post(crate::audio::speech),
        )
        .route(
            "/v1/audio/transcriptions",
            axum::routing::post(crate::audio::transcriptions)
                // Our own 25 MB check answers 413 in OpenAI's shape; this only stops abuse.
                .layer(axum::extract::DefaultBodyLimit::max(
                    2 * crate::audio::MAX_UPLOAD_BYTES,
                )),
        )
        .with_state(Arc::clone(&state));
    let models_dir = args.models.dir;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");

    let loader = Arc::clone(&state);
    tokio::task::spawn_blocking(move || load_engines(&loader, &models_dir));

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

fn load_engines(state: &AppState, models_dir: &std::path::Path) {
    let started = std::time::Instant::now();
    let loaded = Engines::load(models_dir).and_then(|engines| {
        if state.embedded_in_use {
            let llm = crate::engines::llm(models_dir)?;
            tracing::info!(
                model = llm.name(),
                secs = started.elapsed().as_secs_f64(),
                "embedded LLM ready"
            );
            let _ = state.local_llm.set(llm);
        }
        Ok(engines)
    });
    match loaded {
        Ok(engines) => {
            let backend = engines.stt.backend();
            tracing::info!(
                stt_backend = backend,
                secs = started.elapsed().as_secs_f64(),
                "engines ready"
            );
            state
                .metrics
                .build_info
                .with_label_values(&[env!("CARGO_PKG_VERSION"), backend])
                .set(1);
            let _ = state.engines.set(engines);
            state.metrics.ready.set(1);
            *state.not_ready.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "engines failed to load");
            *state.not_ready.write().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
        }
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let not_ready = state
        .not_ready
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match (not_ready, state.engines.get()) {
        (None, Some(engines)) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "stt": {"backend": engines.stt.backend()},
                "tts": {"ready": true},
                "vad": {"ready": true},
            })),
        ),
        (reason, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"status": "not ready", "reason": reason.unwrap_or_default()}),
            ),
        ),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

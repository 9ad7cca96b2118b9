//! The HTTP server: health, readiness, metrics, and the call routes.
//!
//! Engines load in the background after the socket is bound, so `/healthz` answers at once
//! and `/readyz` says 503 (with the reason) until speech can be served.

use std::sync::{Arc, OnceLock, RwLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_models::llm::LocalLlm;
use switchboard_models::stt::SpeechToText;
use switchboard_pipeline::CallDeps;
use switchboard_pipeline::context::knowledge::{DEFAULT_TOP_K, KnowledgeEngine, KnowledgeIndex};
use switchboard_pipeline::context::memory::{DEFAULT_MEMORY_K, MemoryEngine, SharedEmbedder};
use switchboard_pipeline::context::profile::ProfileEngine;
use switchboard_pipeline::context::{ContextEngine, ContextStage, EngineMetrics};
use switchboard_pipeline::metrics::CallMetrics;
use switchboard_pipeline::orchestrator::Orchestrator;
use switchboard_pipeline::persona::Personas;

use crate::cli::ServeArgs;
use crate::engines::Engines;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::writer::{Writer, WriterMetrics};
use crate::turns::TurnLog;

pub struct AppState {
    engines: OnceLock<Engines>,
    /// Why the engines are not ready ("loading" until the first attempt ends).
    not_ready: RwLock<Option<String>>,
    metrics: Metrics,
    pub call_metrics: CallMetrics,
    /// The embedded model, once loaded (a provider in the orchestrator's chain when
    /// configured so).
    pub local_llm: Arc<OnceLock<LocalLlm>>,
    /// Whether readiness waits for the embedded model.
    embedded_in_use: bool,
    pub api_keys: Vec<String>,
    /// Model ids `/v1/models` lists.
    pub model_names: Vec<String>,
    /// Admission: one permit per live call.
    pub call_slots: Arc<tokio::sync::Semaphore>,
    /// Persona, context engines and LLM chain for every turn.
    pub orchestrator: Orchestrator,
    /// The knowledge index, once the embedding model has loaded.
    pub knowledge: Arc<OnceLock<KnowledgeIndex>>,
    /// The tenant requests belong to (one in embedded mode).
    pub tenant: String,
    pub store: Store,
    /// Stores finished turns and learns from them.
    pub turns: TurnLog,
    /// The embedding model, once loaded.
    pub embedder: SharedEmbedder,
    /// How WebRTC peers gather candidates and reach callers.
    pub webrtc: switchboard_channels::webrtc::WebRtcConfig,
    /// Ephemeral client secrets minted for browser calls.
    pub secrets: crate::client_secrets::ClientSecrets,
    /// Whether `/` serves the call page.
    pub call_page: bool,
    pub webrtc_metrics: switchboard_channels::webrtc::WebRtcMetrics,
    /// WebRTC calls in progress (for server-side hang-up).
    pub webrtc_calls: crate::webrtc::LiveCalls,
    pub telephony: crate::telephony::TelephonyConfig,
    pub webhook: crate::webhook::WebhookConfig,
    pub slack: Option<crate::slack::SlackConfig>,
    pub telegram: Option<crate::telegram::TelegramConfig>,
    /// Wakes the webhook worker when a message is accepted.
    pub webhook_work: Arc<tokio::sync::Notify>,
    /// Requests to URLs from outside (webhook callbacks), behind the SSRF guard.
    pub outbound: switchboard_pipeline::outbound::OutboundClient,
    /// Signs hand-off webhooks.
    pub handoff_secret: Option<String>,
}

impl AppState {
    /// The speech engines, once loaded.
    pub fn engines(&self) -> Option<&Engines> {
        self.engines.get()
    }

    /// What a new call needs, once the engines are loaded. Its turns are stored as they
    /// finish, in a session named by the call's id.
    pub fn call_deps(
        &self,
        channel: &'static str,
        persona: Option<String>,
        user: Option<String>,
    ) -> Option<CallDeps> {
        let e = self.engines.get()?;
        let session = crate::turns::SessionInfo {
            tenant: self.tenant.clone(),
            session_id: String::new(),
            channel,
            user: user.clone(),
            persona: Some(
                self.orchestrator
                    .personas
                    .pick(persona.as_deref())
                    .name
                    .clone(),
            ),
        };
        let sink = crate::turns::CallTurns::new(self.turns.clone(), session);
        Some(CallDeps {
            stt: e.stt.clone(),
            tts: e.tts.clone(),
            vad: e.vad.clone(),
            orchestrator: self.orchestrator.clone(),
            metrics: self.call_metrics.clone(),
            tenant: self.tenant.clone(),
            channel,
            persona,
            user,
            sink: Some(Arc::new(sink)),
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

/// A multipart body, or the OpenAI-shaped 400 for a request that is not one.
pub fn multipart(
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<axum::extract::Multipart, Response> {
    form.map_err(|e| {
        invalid_request(
            format!("The body must be multipart/form-data with a 'file' field ({e})."),
            "file",
            "missing_required_parameter",
        )
    })
}

/// The bytes of an uploaded multipart file field, at most `max`: more is a 413 in OpenAI's
/// shape (`file_too_large`), a broken upload a 400.
pub async fn read_file_field(
    field: &mut axum::extract::multipart::Field<'_>,
    max: usize,
) -> Result<Vec<u8>, Response> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| invalid_request(format!("upload interrupted: {e}"), "file", "invalid_value"))?
    {
        if bytes.len() + chunk.len() > max {
            let body = serde_json::json!({"error": {"message": format!("File is larger than the {} MB limit.", max / (1024 * 1024)),
                "type": "invalid_request_error", "param": "file", "code": "file_too_large"}});
            return Err((StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
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
    let has_keys = !api_keys.is_empty();
    let metrics = Metrics::new();
    let call_metrics = CallMetrics::register(metrics.registry())?;
    let webrtc_metrics = switchboard_channels::webrtc::WebRtcMetrics::register(metrics.registry())?;
    let local_llm = Arc::new(OnceLock::new());
    let chain = crate::llm::providers(&args.llm, &call_metrics, &local_llm);
    let personas = match &args.personas {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            Personas::parse(&text)?
        }
        None => Personas::default(),
    };
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        let _ = std::fs::create_dir_all(&args.data_dir);
        Store::sqlite_url(&args.data_dir)
    });
    let store = Store::open(&database_url).await.map_err(|e| {
        anyhow::anyhow!(
            "opening the {} database: {e}",
            crate::store::backend_of(&database_url)
        )
    })?;
    tracing::info!(backend = store.backend(), "database ready");
    let (writer, writer_task) =
        Writer::start(store.clone(), WriterMetrics::register(metrics.registry())?);
    let knowledge = Arc::new(OnceLock::new());
    let embedder: SharedEmbedder = Arc::new(OnceLock::new());
    let engines: Vec<Arc<dyn ContextEngine>> = vec![
        Arc::new(KnowledgeEngine::new(Arc::clone(&knowledge), DEFAULT_TOP_K)),
        Arc::new(MemoryEngine::new(
            Arc::new(store.clone()),
            Arc::clone(&embedder),
            DEFAULT_MEMORY_K,
        )),
        Arc::new(ProfileEngine::new(Arc::new(store.clone()))),
    ];
    let context = ContextStage::new(engines, EngineMetrics::register(metrics.registry())?);
    let orchestrator = Orchestrator::new(
        Arc::new(personas),
        context,
        Arc::clone(&chain.provider),
        Some(call_metrics.stage_seconds.clone()),
    );
    let turns = TurnLog::new(
        writer.clone(),
        Arc::clone(&embedder),
        Arc::clone(&orchestrator.llm),
    );
    let webhook_work = Arc::new(tokio::sync::Notify::new());
    let tool_engine = crate::actions::engine(
        &args.tools,
        &orchestrator.personas,
        &store,
        &turns,
        &call_metrics,
        &webhook_work,
    )?;
    // Tools approved from OpenAPI imports before this start.
    for (persona, tool) in store.installed_tools(crate::store::DEFAULT_TENANT).await? {
        tool_engine.install(&persona, vec![tool]);
    }
    let outbound = tool_engine.outbound().clone();
    let orchestrator = orchestrator.with_tools(tool_engine);
    let state = Arc::new(AppState {
        engines: OnceLock::new(),
        not_ready: RwLock::new(Some("loading models".into())),
        metrics,
        call_metrics,
        local_llm,
        embedded_in_use: chain.uses_embedded,
        model_names: chain.model_names,
        api_keys,
        call_slots: Arc::new(tokio::sync::Semaphore::new(args.max_calls)),
        orchestrator,
        knowledge,
        tenant: crate::store::DEFAULT_TENANT.into(),
        store,
        turns,
        embedder,
        webrtc: args.webrtc.config(),
        secrets: Default::default(),
        call_page: args.webrtc.call_page_enabled(has_keys),
        webrtc_metrics,
        webrtc_calls: Default::default(),
        telephony: crate::telephony::TelephonyConfig {
            twilio_auth_token: args.twilio_auth_token.clone(),
            public_url: args.public_url.clone(),
            twilio_account_sid: args.twilio_account_sid.clone(),
            twilio_api_url: args.twilio_api_url.clone(),
            telnyx_api_key: args.telnyx_api_key.clone(),
            telnyx_api_url: args.telnyx_api_url.clone(),
        },
        webhook: crate::webhook::WebhookConfig {
            secret: args.webhook_secret.clone(),
            callback_url: args.webhook_callback_url.clone(),
        },
        slack: args.im.slack(),
        telegram: args.im.telegram(),
        webhook_work,
        outbound,
        handoff_secret: args.tools.handoff_secret.clone(),
    });
    if crate::inbox::enabled(&state) {
        tokio::spawn(crate::inbox::work(
            Arc::clone(&state),
            Arc::clone(&state.webhook_work),
        ));
    }
    let app = crate::routes::router(Arc::clone(&state));
    let models_dir = args.models.dir;
    let knowledge_dir = args.data_dir.join("knowledge");
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");

    let loader = Arc::clone(&state);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        load_engines(&loader, &models_dir, &knowledge_dir, &runtime)
    });

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Every accepted write reaches the database before the process exits.
    if !writer.flush(std::time::Duration::from_secs(30)).await {
        tracing::error!("durable writes still pending after 30 s at shutdown");
    }
    drop(writer);
    drop(state);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer_task).await;
    tracing::info!("stopped");
    Ok(())
}

fn load_engines(
    state: &AppState,
    models_dir: &std::path::Path,
    knowledge_dir: &std::path::Path,
    runtime: &tokio::runtime::Handle,
) {
    let started = std::time::Instant::now();
    let loaded = Engines::load(models_dir).and_then(|engines| {
        load_knowledge(state, models_dir, knowledge_dir, runtime)?;
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

/// The embedding model and the on-disk knowledge index. Until they load, the knowledge
/// engine reports itself unavailable and the gateway is not ready.
fn load_knowledge(
    state: &AppState,
    models_dir: &std::path::Path,
    dir: &std::path::Path,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let embedder = crate::engines::embedder(models_dir)?;
    let _ = state.embedder.set(Arc::clone(&embedder));
    let index = KnowledgeIndex::open(Some(dir), embedder)
        .map_err(|e| anyhow::anyhow!("opening the knowledge index in {}: {e}", dir.display()))?;
    if index.is_empty() {
        // A missing (or new) index is rebuilt from the documents in the database.
        let documents = runtime.block_on(state.store.all_documents())?;
        for (tenant, doc) in &documents {
            runtime
                .block_on(index.add_document(tenant, &doc.id, &doc.filename, &doc.text))
                .map_err(|e| anyhow::anyhow!("rebuilding the knowledge index: {e}"))?;
        }
        if !documents.is_empty() {
            tracing::info!(
                documents = documents.len(),
                "knowledge index rebuilt from the database"
            );
        }
    }
    let chunks = index.chunk_count(&state.tenant);
    let _ = state.knowledge.set(index);
    tracing::info!(dir = %dir.display(), chunks, secs = started.elapsed().as_secs_f64(), "knowledge index ready");
    Ok(())
}

pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let not_ready = state
        .not_ready
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let database = state.store.ping().await;
    match (not_ready, state.engines.get()) {
        (None, Some(engines)) if database => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "stt": {"backend": engines.stt.backend()},
                "tts": {"ready": true},
                "vad": {"ready": true},
                "database": {"backend": state.store.backend(), "ready": true},
                "knowledge": {"ready": state.knowledge.get().is_some()},
            })),
        ),
        (None, Some(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not ready",
                "reason": format!("the {} database does not answer", state.store.backend())})),
        ),
        (reason, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"status": "not ready", "reason": reason.unwrap_or_default()}),
            ),
        ),
    }
}

pub async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
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

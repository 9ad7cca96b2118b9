//! The HTTP server: health, readiness, metrics, and the call routes.
//!
//! Engines load in the background after the socket is bound, so `/healthz` answers at once
//! and `/readyz` says 503 (with the reason) until speech can be served.

use std::sync::{Arc, OnceLock, RwLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_channels::realtime::transcription::SttModel;
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
    /// Why the engines are not ready ("loading models" until the first attempt ends).
    not_ready: RwLock<Option<String>>,
    metrics: Metrics,
    pub call_metrics: CallMetrics,
    /// The embedded model, once loaded (a provider in the orchestrator's chain when
    /// configured so).
    pub local_llm: Arc<OnceLock<LocalLlm>>,
    /// Whether readiness waits for the embedded model.
    embedded_in_use: bool,
    /// Who is calling: operator keys, stored keys, open mode (and their rate limits).
    pub auth: crate::auth::Auth,
    /// Rate limits (also per session, for chat messages).
    pub limiter: Arc<crate::limits::Limiter>,
    /// Model ids `/v1/models` lists.
    pub model_names: Vec<String>,
    /// Admission: one permit per live call.
    pub call_slots: Arc<tokio::sync::Semaphore>,
    /// `--max-calls`: the permits `call_slots` started with.
    pub max_calls: usize,
    /// `--speculative-replies`: calls draft replies while the caller pauses.
    pub speculative_replies: bool,
    /// Set by SIGTERM: readiness fails and new calls are refused while live ones finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// Persona, context engines and LLM chain for every turn.
    pub orchestrator: Orchestrator,
    /// The knowledge index, once the embedding model has loaded.
    pub knowledge: Arc<OnceLock<KnowledgeIndex>>,
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
    /// Live calls of every transport, here and (with Redis) on the other instances.
    pub registry: Arc<crate::registry::Registry>,
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

    /// The model that transcribes calls, once loaded: what a session's `language` is
    /// checked against.
    pub fn stt_model(&self) -> Option<SttModel<'_>> {
        self.engines().map(|e| SttModel {
            name: e.stt.model(),
            multilingual: e.stt.multilingual(),
        })
    }

    /// What a new call needs, once the engines are loaded. Its turns are stored as they
    /// finish, in a session named by the call's id.
    pub fn call_deps(
        &self,
        tenant: &str,
        channel: &'static str,
        persona: Option<String>,
        user: Option<String>,
    ) -> Option<CallDeps> {
        let e = self.engines.get()?;
        let session = crate::turns::SessionInfo {
            tenant: tenant.to_owned(),
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
            end_of_turn: e.end_of_turn.clone(),
            orchestrator: self.orchestrator.clone(),
            metrics: self.call_metrics.clone(),
            tenant: tenant.to_owned(),
            channel,
            persona,
            user,
            sink: Some(Arc::new(sink)),
            speculate: self.speculative_replies,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, keys))
}

async fn serve(args: ServeArgs, operator_keys: Vec<String>) -> anyhow::Result<()> {
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
    let database_url = args.store.url();
    let store = Store::open(&database_url).await.map_err(|e| {
        anyhow::anyhow!(
            "opening the {} database: {e}",
            crate::store::backend_of(&database_url)
        )
    })?;
    tracing::info!(backend = store.backend(), "database ready");
    for (channel, tenant) in personas.bound_tenants() {
        if !crate::auth::keys::valid_tenant_id(tenant) {
            anyhow::bail!(
                "persona file: channel {channel:?} names tenant {tenant:?}; tenant ids are 1-64 lower-case letters, digits, '-' and '_'"
            );
        }
        store.ensure_tenant(tenant).await?;
        tracing::info!(channel, tenant, "channel bound to a tenant");
    }
    let stored_keys = store.has_usable_keys().await?;
    let jwt = crate::auth::verifier::JwtVerifier::new(&args.jwt)?;
    if operator_keys.is_empty() && !stored_keys && jwt.is_none() && !args.listen.ip().is_loopback()
    {
        anyhow::bail!(
            "refusing to listen on {} without API keys: set SWITCHBOARD_API_KEYS (or --api-key), create one with `switchboard keys create`, or listen on 127.0.0.1",
            args.listen
        );
    }
    let has_keys = !operator_keys.is_empty() || stored_keys || jwt.is_some();
    if !has_keys {
        tracing::warn!(
            "no API keys configured: accepting unauthenticated clients on loopback only"
        );
    }
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
    )
    .with_summaries(Arc::new(store.clone()));
    let turns = TurnLog::new(
        writer.clone(),
        store.clone(),
        Arc::clone(&embedder),
        Arc::clone(&orchestrator.llm),
    );
    let redis = match &args.limits.redis_url {
        Some(url) => Some(Arc::new(crate::redis_link::RedisLink::new(
            url,
            crate::redis_link::RedisMetrics::register(metrics.registry())?,
        )?)),
        None => None,
    };
    let limiter = Arc::new(crate::limits::Limiter::new(
        &args.limits,
        redis.clone(),
        Some(crate::limits::LimitMetrics::register(metrics.registry())?),
    )?);
    let registry = crate::registry::Registry::new(
        redis.clone(),
        args.limits.max_calls_per_tenant.filter(|n| *n > 0),
        Some(crate::registry::RegistryMetrics::register(
            metrics.registry(),
        )?),
    );
    registry.spawn_tasks();
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
    for (tenant, persona, tool) in store.all_installed_tools().await? {
        tool_engine.install(&tenant, &persona, vec![tool]);
    }
    crate::actions::announce_expiries(&tool_engine, Arc::clone(&registry));
    let outbound = tool_engine.outbound().clone();
    let mut orchestrator = orchestrator.with_tools(tool_engine);
    if limiter.has_token_budget() {
        let budget = crate::limits::tokens::TenantTokens(Arc::clone(&limiter));
        orchestrator = orchestrator.with_budget(Arc::new(budget));
    }
    let state = Arc::new(AppState {
        engines: OnceLock::new(),
        not_ready: RwLock::new(Some("loading models".into())),
        metrics,
        call_metrics,
        local_llm,
        embedded_in_use: chain.uses_embedded,
        model_names: chain.model_names,
        auth: crate::auth::Auth::new(operator_keys, store.clone(), Some(Arc::clone(&limiter)))
            .with_jwt(jwt),
        limiter,
        call_slots: Arc::new(tokio::sync::Semaphore::new(args.max_calls)),
        max_calls: args.max_calls,
        speculative_replies: args.speculative_replies,
        draining: Default::default(),
        orchestrator,
        knowledge,
        store,
        turns,
        embedder,
        webrtc: args.webrtc.config(),
        secrets: crate::client_secrets::ClientSecrets::shared(redis.clone()),
        call_page: args.webrtc.call_page_enabled(has_keys),
        webrtc_metrics,
        registry,
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
    let stt_args = args.stt.clone();
    let knowledge_dir = args.store.data_dir.join("knowledge");
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");

    let loader = Arc::clone(&state);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        load_engines(&loader, &models_dir, &stt_args, &knowledge_dir, &runtime)
    });

    let drain_timeout = std::time::Duration::from_secs(args.drain_secs);
    let server =
        axum::serve(listener, app).with_graceful_shutdown(drain(Arc::clone(&state), drain_timeout));
    // Connections still open after the drain (a call past the timeout) do not hold the
    // process: once the drain has ended, they get 2 s.
    let flag = Arc::clone(&state);
    let hard_stop = async move {
        while !flag.is_draining() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tokio::time::sleep(drain_timeout + std::time::Duration::from_secs(2)).await;
    };
    tokio::select! {
        served = server => served?,
        () = hard_stop => tracing::warn!("connections still open after the drain: closing them"),
    }
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
    stt_args: &crate::cli::SttArgs,
    knowledge_dir: &std::path::Path,
    runtime: &tokio::runtime::Handle,
) {
    let started = std::time::Instant::now();
    let loaded = Engines::load(models_dir, stt_args).and_then(|engines| {
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
                stt_device = engines.stt.device(),
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
    let chunks = index.chunk_count(crate::store::DEFAULT_TENANT);
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
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"status": "not ready", "reason": "draining",
                "calls": state.live_calls()}),
            ),
        );
    }
    let database = state.store.ping().await;
    match (not_ready, state.engines.get()) {
        (None, Some(engines)) if database => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "instance": state.registry.instance(),
                "stt": {
                    "backend": engines.stt.backend(),
                    "device": engines.stt.device(),
                    "workers": engines.stt.workers(),
                },
                "tts": {"ready": true},
                "vad": {"ready": true},
                "end_of_turn": {"ready": true, "model": "smart-turn-v3.2"},
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

impl AppState {
    /// The tenant a bot or phone channel serves: `[channels.NAME]` in the persona file, else
    /// the default tenant.
    pub fn channel_tenant(&self, channel: &str) -> String {
        self.orchestrator
            .personas
            .channel(channel)
            .tenant
            .unwrap_or_else(|| crate::store::DEFAULT_TENANT.into())
    }

    /// Calls in progress.
    pub fn live_calls(&self) -> usize {
        self.max_calls - self.call_slots.available_permits()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// SIGTERM (or Ctrl-C): readiness fails at once so the load balancer stops sending, new
/// calls are refused, live calls may finish for up to `timeout`; then the server stops
/// (the caller flushes the write queue before the process exits).
async fn drain(state: Arc<AppState>, timeout: std::time::Duration) {
    shutdown_signal().await;
    state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + timeout;
    tracing::info!(
        calls = state.live_calls(),
        timeout_secs = timeout.as_secs(),
        "draining: not ready, refusing new calls, waiting for live ones"
    );
    while state.live_calls() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    match state.live_calls() {
        0 => tracing::info!("drained: no calls left"),
        n => tracing::warn!(calls = n, "drain timeout: ending the remaining calls"),
    }
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

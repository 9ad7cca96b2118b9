//! The tool engine: which server-side tools a persona has, running them, proposing the ones
//! that need approval, resolving approvals, expiring the unanswered, and auditing all of it.
//!
//! Tools come from the persona file and, at run time, from approved OpenAPI imports
//! ([`ToolEngine::install`]), so new tools take effect without a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::actions::{ActionStatus, ActionStore, PendingAction};
use super::builtin::HandoffSink;
use super::client_mcp::ClientCallRecord;
use super::confirm::{describe, redact};
use super::http::{self, ToolOutput};
use super::mcp::McpHub;
use super::{ToolDef, ToolDefs};
use crate::llm::ToolCall;
use crate::metrics::CallMetrics;
use crate::outbound::{OutboundClient, OutboundPolicy};
use crate::persona::Persona;

/// Characters of a tool's answer kept in the audit log.
const AUDIT_RESULT_CHARS: usize = 500;

/// Default time a pending action waits for approval.
pub const DEFAULT_ACTION_TTL: Duration = Duration::from_secs(30 * 60);

/// Whose turn a tool call belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolScope {
    pub tenant: String,
    /// `phone`, `realtime`, `chat`, ... (built-in tools depend on it).
    pub channel: String,
    pub session: Option<String>,
    pub user: Option<String>,
    pub persona: String,
}

/// Where tool events are recorded (the gateway's `audit_events`).
pub trait ToolAudit: Send + Sync {
    fn record(&self, tenant: &str, session: Option<&str>, kind: &str, detail: Value);
}

pub struct ToolEngineConfig {
    /// Tools declared in the persona file.
    pub tools: ToolDefs,
    pub policy: OutboundPolicy,
    pub action_ttl: Duration,
    pub actions: Arc<dyn ActionStore>,
    pub audit: Option<Arc<dyn ToolAudit>>,
    pub metrics: Option<CallMetrics>,
    /// Where `escalate_to_human` hands conversations over (`None`: no webhook hand-off).
    pub handoff: Option<Arc<dyn HandoffSink>>,
    /// Whether Realtime clients may declare MCP servers for the gateway to call
    /// (`client_mcp.rs`).
    pub client_mcp: bool,
}

/// How an approval or rejection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    Executed {
        action: PendingAction,
        output: ToolOutput,
    },
    Rejected(PendingAction),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("no such action")]
    NotFound,
    #[error("the action expired before it was approved")]
    Expired(Box<PendingAction>),
    #[error("the action was already {}", .0.status.as_str())]
    AlreadyResolved(Box<PendingAction>),
    #[error("action store: {0}")]
    Store(String),
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct ToolEngine {
    file_tools: ToolDefs,
    /// Approved at run time, by (tenant, persona): one tenant's imports are not another's.
    installed: RwLock<BTreeMap<(String, String), ToolDefs>>,
    /// Listed by MCP servers (every persona, as file tools are).
    mcp_tools: RwLock<ToolDefs>,
    mcp: std::sync::OnceLock<Arc<McpHub>>,
    client: OutboundClient,
    actions: Arc<dyn ActionStore>,
    audit: Option<Arc<dyn ToolAudit>>,
    metrics: Option<CallMetrics>,
    handoff: Option<Arc<dyn HandoffSink>>,
    client_mcp: bool,
    ttl: Duration,
    /// Told of each action the sweep expires, so a live call can say so at once.
    on_expiry: std::sync::OnceLock<ExpiryHook>,
}

/// Called with each action the expiry sweep cancelled (on the instance that cancelled it).
pub type ExpiryHook = Arc<dyn Fn(PendingAction) + Send + Sync>;

impl std::fmt::Debug for ToolEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolEngine")
            .field("file_tools", &self.file_tools.keys().collect::<Vec<_>>())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl ToolEngine {
    pub fn new(cfg: ToolEngineConfig) -> Self {
        Self {
            file_tools: cfg.tools,
            installed: RwLock::new(BTreeMap::new()),
            mcp_tools: RwLock::new(ToolDefs::new()),
            mcp: std::sync::OnceLock::new(),
            client: OutboundClient::new(cfg.policy),
            actions: cfg.actions,
            audit: cfg.audit,
            metrics: cfg.metrics,
            handoff: cfg.handoff,
            client_mcp: cfg.client_mcp,
            ttl: cfg.action_ttl,
            on_expiry: std::sync::OnceLock::new(),
        }
    }

    /// Be told of every action the sweep expires from now on (set once).
    pub fn on_expiry(&self, hook: ExpiryHook) {
        let _ = self.on_expiry.set(hook);
    }

    pub fn actions(&self) -> &Arc<dyn ActionStore> {
        &self.actions
    }

    pub fn outbound(&self) -> &OutboundClient {
        &self.client
    }

    /// The guard client-declared MCP servers are reached through; `None` when the operator
    /// has turned them off.
    pub fn client_mcp_outbound(&self) -> Option<&OutboundClient> {
        self.client_mcp.then_some(&self.client)
    }

    /// Make `tools` live for `tenant`'s `persona` (replacing same-named ones), effective from
    /// the next turn.
    pub fn install(&self, tenant: &str, persona: &str, tools: Vec<ToolDef>) {
        let mut installed = self.installed.write().unwrap_or_else(|p| p.into_inner());
        let entry = installed
            .entry((tenant.to_owned(), persona.to_owned()))
            .or_default();
        for t in tools {
            entry.insert(t.name.clone(), t);
        }
    }

    /// Connect the MCP servers' tools (once, at start-up).
    pub fn attach_mcp(&self, hub: McpHub, tools: Vec<ToolDef>) {
        if self.mcp.set(Arc::new(hub)).is_ok() {
            let mut mine = self.mcp_tools.write().unwrap_or_else(|p| p.into_inner());
            for t in tools {
                mine.insert(t.name.clone(), t);
            }
        }
    }

    /// The server-side tools `persona` may call: the file's and MCP servers' tools it lists
    /// (all of them when it lists none), then the ones `tenant` installed for it.
    pub fn tools_for(&self, tenant: &str, persona: &Persona) -> Vec<ToolDef> {
        let allowed = |t: &&ToolDef| {
            persona
                .tools
                .as_ref()
                .is_none_or(|names| names.contains(&t.name))
        };
        let mut out: Vec<ToolDef> = self.file_tools.values().filter(allowed).cloned().collect();
        let mcp = self.mcp_tools.read().unwrap_or_else(|p| p.into_inner());
        out.extend(
            mcp.values()
                .filter(allowed)
                .filter(|t| !self.file_tools.contains_key(&t.name))
                .cloned(),
        );
        let installed = self.installed.read().unwrap_or_else(|p| p.into_inner());
        if let Some(extra) = installed.get(&(tenant.to_owned(), persona.name.clone())) {
            out.retain(|t| !extra.contains_key(&t.name));
            out.extend(extra.values().cloned());
        }
        out
    }

    /// A tool by name as `tenant`'s `persona` sees it (installed ones shadow the file's).
    fn named(&self, tenant: &str, persona: &str, name: &str) -> Option<ToolDef> {
        let installed = self.installed.read().unwrap_or_else(|p| p.into_inner());
        installed
            .get(&(tenant.to_owned(), persona.to_owned()))
            .and_then(|t| t.get(name))
            .or_else(|| self.file_tools.get(name))
            .cloned()
            .or_else(|| {
                self.mcp_tools
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(name)
                    .cloned()
            })
    }

    /// Count a call that ran under `label` and time it; the audit kind it is recorded as.
    fn observe_call(&self, label: &str, error: Option<&str>, elapsed: Duration) -> &'static str {
        self.count(label, error.unwrap_or("ok"));
        if let Some(m) = &self.metrics {
            m.tool_seconds
                .with_label_values(&[label])
                .observe(elapsed.as_secs_f64());
        }
        if error.is_some() {
            "tool.failed"
        } else {
            "tool.executed"
        }
    }

    fn count(&self, tool: &str, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.tool_calls_total.with_label_values(&[tool, outcome]).inc();
        }
    }

    fn audit(&self, scope_tenant: &str, session: Option<&str>, kind: &str, detail: Value) {
        if let Some(a) = &self.audit {
            a.record(scope_tenant, session, kind, detail);
        }
    }

    /// Run a tool now (a read tool, or an approved action), audited and counted.
    pub async fn run(
        &self,
        scope: &ToolScope,
        tool: &ToolDef,
        call: &ToolCall,
        action_id: Option<&str>,
    ) -> ToolOutput {
        let output = match parse_arguments(&tool.parameters, &call.arguments) {
            Ok(args) => {
                // Writes carry the action id so a retried request is recognised by the service.
                let key = action_id.filter(|_| tool.effect.needs_confirmation());
                match (&tool.builtin, &tool.mcp, self.mcp.get()) {
                    (Some(b), _, _) => {
                        super::builtin::run(b, scope, &args, self.handoff.as_deref()).await
                    }
                    (None, Some(binding), Some(hub)) => {
                        hub.call(binding, &args, Duration::from_millis(tool.timeout_ms))
                            .await
                    }
                    _ => http::call(&self.client, tool, &args, key, &env).await,
                }
            }
            Err(message) => ToolOutput {
                content: json!({"error": "invalid_arguments", "message": message}).to_string(),
                error: Some("invalid_arguments"),
                status: None,
                attempts: 0,
                elapsed: Duration::ZERO,
            },
        };
        let kind = self.observe_call(&tool.name, output.error, output.elapsed);
        self.audit(
            &scope.tenant,
            scope.session.as_deref(),
            kind,
            json!({
                "tool": tool.name, "effect": tool.effect.as_str(), "call_id": call.id,
                "action_id": action_id, "arguments": redacted_arguments(&call.arguments),
                "error": output.error, "http_status": output.status, "attempts": output.attempts,
                "duration_ms": output.elapsed.as_millis() as u64, "result_chars": output.content.chars().count(),
                // What the model was told (already trimmed for it), cut for the log.
                "result": output.content.chars().take(AUDIT_RESULT_CHARS).collect::<String>(),
                "persona": scope.persona, "user": scope.user,
            }),
        );
        output
    }

    /// Count and audit a call the gateway made to a client-declared MCP server
    /// (`client_mcp.rs`). The metric's `tool` label is `client_mcp` for all of them: clients
    /// name their own servers and tools, which must not become label values.
    pub fn note_client_call(&self, scope: &ToolScope, call: &ClientCallRecord<'_>) {
        let kind = self.observe_call("client_mcp", call.error, call.elapsed);
        self.audit(
            &scope.tenant,
            scope.session.as_deref(),
            kind,
            json!({
                "tool": call.tool, "mcp_server": call.server_label, "declared_by": "client",
                "approval_request_id": call.approval_request_id,
                "arguments": redacted_arguments(call.arguments), "error": call.error,
                "duration_ms": call.elapsed.as_millis() as u64,
                "persona": scope.persona, "user": scope.user,
            }),
        );
    }

    /// Store a call that needs approval as a pending action.
    pub async fn propose(
        &self,
        scope: &ToolScope,
        tool: &ToolDef,
        call: &ToolCall,
    ) -> Result<PendingAction, String> {
        let session = scope
            .session
            .clone()
            .ok_or("a tool that needs confirmation needs a session")?;
        let args = parse_arguments(&tool.parameters, &call.arguments)?;
        let now = now_ms();
        let action = PendingAction {
            id: new_action_id(),
            tenant: scope.tenant.clone(),
            session_id: session,
            user_id: scope.user.clone(),
            persona: scope.persona.clone(),
            tool: tool.name.clone(),
            call_id: call.id.clone(),
            arguments: Value::Object(args.clone()).to_string(),
            effect: tool.effect,
            prompt: describe(tool.confirm.as_deref(), &tool.description, &args),
            status: ActionStatus::Pending,
            result: None,
            reported: false,
            created_at: now,
            expires_at: now + self.ttl.as_millis() as i64,
            updated_at: now,
        };
        self.actions.create(&action).await?;
        self.count(&tool.name, "proposed");
        self.audit(
            &scope.tenant,
            Some(&action.session_id),
            "tool.proposed",
            json!({"action_id": action.id, "tool": tool.name, "effect": tool.effect.as_str(),
                   "arguments": redact(&Value::Object(args)), "prompt": action.prompt,
                   "expires_at": action.expires_at, "persona": scope.persona, "user": scope.user}),
        );
        Ok(action)
    }

    /// Approve (run) or reject a pending action. Exactly one resolver wins a race; an
    /// expired action is cancelled and never runs.
    pub async fn resolve(
        &self,
        tenant: &str,
        id: &str,
        approve: bool,
        via: &str,
    ) -> Result<Resolution, ResolveError> {
        let action = self
            .actions
            .get(tenant, id)
            .await
            .map_err(ResolveError::Store)?
            .ok_or(ResolveError::NotFound)?;
        if action.status == ActionStatus::Expired {
            return Err(ResolveError::Expired(Box::new(action)));
        }
        if action.status != ActionStatus::Pending {
            return Err(ResolveError::AlreadyResolved(Box::new(action)));
        }
        if now_ms() >= action.expires_at {
            self.expire(&action).await;
            let mut expired = action;
            expired.status = ActionStatus::Expired;
            return Err(ResolveError::Expired(Box::new(expired)));
        }
        let to = if approve {
            ActionStatus::Approved
        } else {
            ActionStatus::Rejected
        };
        let won = self
            .actions
            .transition(tenant, id, ActionStatus::Pending, to, None, now_ms())
            .await
            .map_err(ResolveError::Store)?;
        if !won {
            let now = self
                .actions
                .get(tenant, id)
                .await
                .map_err(ResolveError::Store)?;
            return Err(now.map_or(ResolveError::NotFound, |a| {
                ResolveError::AlreadyResolved(Box::new(a))
            }));
        }
        let kind = if approve {
            "tool.confirmed"
        } else {
            "tool.rejected"
        };
        self.count(&action.tool, if approve { "confirmed" } else { "rejected" });
        self.audit(
            tenant,
            Some(&action.session_id),
            kind,
            json!({"action_id": id, "tool": action.tool, "via": via}),
        );
        if !approve {
            let mut rejected = action;
            rejected.status = ActionStatus::Rejected;
            return Ok(Resolution::Rejected(rejected));
        }
        self.execute_approved(action).await
    }

    async fn execute_approved(&self, action: PendingAction) -> Result<Resolution, ResolveError> {
        let scope = ToolScope {
            tenant: action.tenant.clone(),
            channel: String::new(),
            session: Some(action.session_id.clone()),
            user: action.user_id.clone(),
            persona: action.persona.clone(),
        };
        let call = ToolCall {
            id: action.call_id.clone(),
            name: action.tool.clone(),
            arguments: action.arguments.clone(),
        };
        let output = match self.named(&action.tenant, &action.persona, &action.tool) {
            Some(tool) => self.run(&scope, &tool, &call, Some(&action.id)).await,
            None => ToolOutput {
                content: json!({"error": "not_configured", "message": "This tool is no longer available."}).to_string(),
                error: Some("not_configured"),
                status: None,
                attempts: 0,
                elapsed: Duration::ZERO,
            },
        };
        let to = if output.error.is_some() {
            ActionStatus::Failed
        } else {
            ActionStatus::Executed
        };
        self.actions
            .transition(
                &action.tenant,
                &action.id,
                ActionStatus::Approved,
                to,
                Some(&output.content),
                now_ms(),
            )
            .await
            .map_err(ResolveError::Store)?;
        let mut done = action;
        done.status = to;
        done.result = Some(output.content.clone());
        Ok(Resolution::Executed {
            action: done,
            output,
        })
    }

    async fn expire(&self, action: &PendingAction) -> bool {
        let note =
            json!({"status": "expired", "message": "Not approved in time; cancelled."}).to_string();
        self.cancel(action, ActionStatus::Expired, Some(&note))
            .await
    }

    /// The caller moved on without answering: cancel the action.
    pub async fn supersede(&self, action: &PendingAction) {
        self.cancel(action, ActionStatus::Superseded, None).await;
    }

    /// Move a pending action to `to` (expired, superseded), counted and audited as
    /// `tool.{to}`; `false` when something else settled it first.
    async fn cancel(&self, action: &PendingAction, to: ActionStatus, note: Option<&str>) -> bool {
        let won = self
            .actions
            .transition(
                &action.tenant,
                &action.id,
                ActionStatus::Pending,
                to,
                note,
                now_ms(),
            )
            .await
            .unwrap_or(false);
        if won {
            self.count(&action.tool, to.as_str());
            self.audit(
                &action.tenant,
                Some(&action.session_id),
                &format!("tool.{}", to.as_str()),
                json!({"action_id": action.id, "tool": action.tool, "expires_at": action.expires_at}),
            );
        }
        won
    }

    /// Cancel every pending action past its time to live; how many were.
    pub async fn expire_due(&self) -> usize {
        let due = match self.actions.due_for_expiry(now_ms()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not list actions due for expiry");
                return 0;
            }
        };
        let mut n = 0;
        for a in due {
            if self.expire(&a).await {
                n += 1;
                if let Some(hook) = self.on_expiry.get() {
                    hook(a);
                }
            }
        }
        n
    }

    /// Expire due actions every `every` until the process ends.
    pub fn spawn_expiry(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = engine.expire_due().await;
                if n > 0 {
                    tracing::info!(expired = n, "pending actions expired");
                }
            }
        })
    }
}

fn new_action_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("act_{:x}{:04x}{:x}", nanos, n & 0xffff, std::process::id())
}

fn redacted_arguments(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments)
        .map_or_else(|_| Value::String("(not JSON)".into()), |v| redact(&v))
}

/// The model's arguments as an object, with the schema's required fields present.
pub fn parse_arguments(schema: &Value, arguments: &str) -> Result<Map<String, Value>, String> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the arguments are not JSON: {e}"))?;
    let Value::Object(args) = value else {
        return Err("the arguments must be a JSON object".into());
    };
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if args.get(name).is_none_or(Value::is_null) {
            return Err(format!("missing required argument {name:?}"));
        }
    }
    Ok(args)
}

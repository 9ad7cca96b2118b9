//! Tools from MCP servers (the `rmcp` client), listed and called like any other tool and
//! under the same confirmation policy. Declared in the persona file:
//!
//! ```toml
//! [mcp.shop]
//! command = "shop-mcp"                 # stdio: a child process...
//! args = ["--readonly"]
//! # url = "http://127.0.0.1:9000/mcp"  # ...or streamable HTTP
//! # headers = { "X-Api-Key" = "..." }  # sent to `url` as written
//! effect = "write"                     # default for its tools (write unless configured)
//! effects = { order_status = "read" }  # per tool
//! tools = ["order_status", "refund"]   # only these (omitted: all it lists)
//! timeout_ms = 10000
//! max_concurrent_calls = 64            # calls in flight at once over `url` (the rest queue)
//! ```
//!
//! The model sees `{server}_{tool}`. A server's own hints never lower the configured level:
//! a tool is `read` only when configured so, and `destructiveHint` raises it to dangerous.
//! A server that has gone away is reconnected once on the next call. Calls to one server
//! run side by side (its session is shared, not held by one call at a time), and a call
//! given up on (its deadline passed, or nobody waits for its answer any more) is cancelled
//! at the server with MCP's `notifications/cancelled` (rmcp sends it when the call is
//! dropped).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::confirm::is_tool_name;
use super::http::{ToolOutput, trim_for_model};
use super::{DEFAULT_MAX_RESPONSE_CHARS, McpBinding, SideEffect, ToolDef};
use crate::outbound::OutboundClient;

/// How long connecting and listing tools may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// A program speaking MCP on stdin/stdout.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// A streamable-HTTP MCP endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// Sent with every request to `url`, as written (an API key the server wants).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_effect")]
    pub effect: SideEffect,
    #[serde(default)]
    pub effects: BTreeMap<String, SideEffect>,
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Calls in flight at once over streamable HTTP; more wait for one to end. Every turn
    /// calling the server shares its session, so this bounds what they ask of it together.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: usize,
}

fn default_effect() -> SideEffect {
    SideEffect::Write
}
fn default_timeout() -> u64 {
    10_000
}
pub fn default_max_concurrent_calls() -> usize {
    64
}

impl McpServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        match (&self.command, &self.url) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(
                    "give exactly one of `command` (stdio) or `url` (streamable HTTP)".into(),
                );
            }
        }
        if !(1..=120_000).contains(&self.timeout_ms) {
            return Err("timeout_ms must be 1..120000".into());
        }
        if !(1..=1024).contains(&self.max_concurrent_calls) {
            return Err("max_concurrent_calls must be 1..1024".into());
        }
        if !self.headers.is_empty() && self.url.is_none() {
            return Err("`headers` go with `url`".into());
        }
        header_map(&self.headers).map(|_| ())
    }
}

/// Headers the transport sets itself, which a configuration may not replace.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// `headers` as the HTTP transport takes them; an invalid or reserved one is an error that
/// names it (never its value, which may be a secret).
pub fn header_map(
    headers: &BTreeMap<String, String>,
) -> Result<HashMap<HeaderName, HeaderValue>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not an HTTP header name"))?;
            if RESERVED_HEADERS.contains(&key.as_str()) {
                return Err(format!(
                    "header {name:?} is set by the MCP transport itself"
                ));
            }
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header {name:?} is not a valid header value"))?;
            value.set_sensitive(true);
            Ok((key, value))
        })
        .collect()
}

type Client = RunningService<RoleClient, ()>;

struct Server {
    config: McpServerConfig,
    /// The live session; locked only to take it or to replace one that has gone away.
    client: Mutex<Option<Arc<Client>>>,
}

impl Server {
    /// The live session, reconnected first if it has gone away.
    async fn session(&self, name: &str, guard: &OutboundClient) -> Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(connect(name, &self.config, guard).await?);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Forget `closed`, unless another call has already replaced it.
    async fn forget(&self, closed: &Arc<Client>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, closed)) {
            *slot = None;
        }
    }
}

/// The connected MCP servers.
pub struct McpHub {
    servers: BTreeMap<String, Server>,
    guard: OutboundClient,
}

impl std::fmt::Debug for McpHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHub")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish()
    }
}

async fn connect(
    name: &str,
    config: &McpServerConfig,
    guard: &OutboundClient,
) -> Result<Client, String> {
    let started = tokio::time::timeout(CONNECT_TIMEOUT, async {
        if let Some(cmd) = &config.command {
            let mut command = tokio::process::Command::new(cmd);
            command.args(&config.args).kill_on_drop(true);
            let transport = rmcp::transport::TokioChildProcess::new(command)
                .map_err(|e| format!("starting {cmd}: {e}"))?;
            ().serve(transport).await.map_err(|e| e.to_string())
        } else {
            let url = config.url.clone().unwrap_or_default();
            // Held to the same destinations as every tool, whoever declared the server.
            guard.vet(&url).await.map_err(|e| e.to_string())?;
            let settings = StreamableHttpClientTransportConfig::with_uri(url)
                .custom_headers(header_map(&config.headers)?)
                .max_concurrent_requests(config.max_concurrent_calls);
            let transport = rmcp::transport::StreamableHttpClientTransport::from_config(settings);
            ().serve(transport).await.map_err(|e| e.to_string())
        }
    })
    .await;
    started.unwrap_or_else(|_| {
        Err(format!(
            "MCP server {name} did not start within {CONNECT_TIMEOUT:?}"
        ))
    })
}

/// Connect to one server and list its tools (those its configuration allows), each step
/// under [`CONNECT_TIMEOUT`].
async fn connect_and_list(
    name: &str,
    config: &McpServerConfig,
    guard: &OutboundClient,
) -> Result<(Client, Vec<ToolDef>), String> {
    let client = connect(name, config, guard).await?;
    let listed = tokio::time::timeout(CONNECT_TIMEOUT, client.list_all_tools())
        .await
        .map_err(|_| {
            format!("MCP server {name} did not list its tools within {CONNECT_TIMEOUT:?}")
        })?
        .map_err(|e| format!("tools/list failed: {e}"))?;
    let tools = listed
        .into_iter()
        .filter_map(|t| tool_def(name, config, t))
        .collect();
    Ok((client, tools))
}

impl McpHub {
    /// Connect to every server and list its tools. A server that fails is logged and left
    /// out of the tools (its calls try to connect again).
    pub async fn connect(
        configs: &BTreeMap<String, McpServerConfig>,
        guard: OutboundClient,
    ) -> (Self, Vec<ToolDef>) {
        let mut servers = BTreeMap::new();
        let mut tools = Vec::new();
        for (name, config) in configs {
            let client = match connect_and_list(name, config, &guard).await {
                Ok((c, listed)) => {
                    tools.extend(listed);
                    Some(c)
                }
                Err(e) => {
                    tracing::warn!(server = %name, error = %e, "MCP server unavailable");
                    None
                }
            };
            servers.insert(
                name.clone(),
                Server {
                    config: config.clone(),
                    client: Mutex::new(client.map(Arc::new)),
                },
            );
        }
        tracing::info!(
            servers = servers.len(),
            tools = tools.len(),
            "MCP servers connected"
        );
        (Self { servers, guard }, tools)
    }

    /// Connect to one server and list its tools, or say why not (a client-declared server,
    /// whose failure its client is told of).
    pub async fn connect_one(
        name: &str,
        config: &McpServerConfig,
        guard: OutboundClient,
    ) -> Result<(Self, Vec<ToolDef>), String> {
        let (client, tools) = connect_and_list(name, config, &guard).await?;
        let server = Server {
            config: config.clone(),
            client: Mutex::new(Some(Arc::new(client))),
        };
        let servers = BTreeMap::from([(name.to_owned(), server)]);
        Ok((Self { servers, guard }, tools))
    }

    /// Call `binding`'s tool; errors come back as output the model can explain.
    pub async fn call(
        &self,
        binding: &McpBinding,
        args: &Map<String, Value>,
        timeout: Duration,
    ) -> ToolOutput {
        let started = Instant::now();
        let fail = |kind: &'static str, message: String| ToolOutput {
            content: json!({"error": kind, "message": message}).to_string(),
            error: Some(kind),
            status: None,
            attempts: 1,
            elapsed: started.elapsed(),
        };
        let Some(server) = self.servers.get(&binding.server) else {
            return fail(
                "not_configured",
                "This tool's server is not configured.".into(),
            );
        };
        let client = match server.session(&binding.server, &self.guard).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(server = %binding.server, error = %e, "MCP reconnect failed");
                return fail("network", "The tool's server is not reachable.".into());
            }
        };
        let params = CallToolRequestParams::new(binding.tool.clone()).with_arguments(args.clone());
        // Dropping the call on timeout cancels it at the server.
        let result = tokio::time::timeout(timeout, client.call_tool(params)).await;
        match result {
            Err(_) => fail(
                "timeout",
                format!("The tool did not answer within {} ms.", timeout.as_millis()),
            ),
            Ok(Err(e)) => {
                tracing::warn!(server = %binding.server, tool = %binding.tool, error = %e, "MCP call failed");
                if client.is_closed() {
                    server.forget(&client).await;
                }
                fail("server_error", "The tool's server failed.".into())
            }
            Ok(Ok(r)) => {
                let text: Vec<String> = r
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect();
                let body = match (&r.structured_content, text.is_empty()) {
                    (Some(v), _) => v.to_string(),
                    (None, false) => text.join("\n"),
                    (None, true) => "{}".into(),
                };
                let content = trim_for_model(body.as_bytes(), DEFAULT_MAX_RESPONSE_CHARS, false);
                if r.is_error == Some(true) {
                    ToolOutput {
                        content: json!({"error": "tool_error", "message": content}).to_string(),
                        error: Some("tool_error"),
                        status: None,
                        attempts: 1,
                        elapsed: started.elapsed(),
                    }
                } else {
                    ToolOutput {
                        content,
                        error: None,
                        status: None,
                        attempts: 1,
                        elapsed: started.elapsed(),
                    }
                }
            }
        }
    }
}

/// The name the model calls a server's tool by: `{server}_{tool}`, other characters as `_`,
/// at most 64.
pub fn model_tool_name(server: &str, tool: &str) -> String {
    format!("{server}_{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// An MCP tool as one of ours, with the configured side-effect level.
fn tool_def(server: &str, config: &McpServerConfig, t: rmcp::model::Tool) -> Option<ToolDef> {
    let remote = t.name.to_string();
    if config
        .tools
        .as_ref()
        .is_some_and(|only| !only.contains(&remote))
    {
        return None;
    }
    let name = model_tool_name(server, &remote);
    if !is_tool_name(&name) {
        return None;
    }
    let destructive = t.annotations.as_ref().and_then(|a| a.destructive_hint) == Some(true);
    let effect = match config.effects.get(&remote) {
        Some(e) => *e,
        None if destructive => SideEffect::Dangerous,
        None => config.effect,
    };
    let mut parameters = Value::Object((*t.input_schema).clone());
    if parameters.get("type").is_none() {
        parameters["type"] = json!("object");
    }
    Some(ToolDef {
        name,
        description: t
            .description
            .map(|d| d.to_string())
            .unwrap_or_else(|| remote.clone()),
        parameters,
        effect,
        timeout_ms: config.timeout_ms,
        confirm: None,
        idempotent: false,
        http: None,
        mcp: Some(McpBinding {
            server: server.to_owned(),
            tool: remote,
        }),
        builtin: None,
    })
}

//! Server-side tools: functions the agent runs itself against real systems (an order API,
//! a CRM), as opposed to tools a client offers and runs. Declared in the persona file:
//!
//! ```toml
//! [tools.cancel_order]
//! description = "Cancel an order by its number"
//! effect = "dangerous"                       # read | write | dangerous
//! timeout_ms = 5000
//! confirm = "cancel order {order_id}"        # what the caller is asked to approve
//! parameters = { type = "object", properties = { order_id = { type = "string" } }, required = ["order_id"] }
//! [tools.cancel_order.http]
//! method = "POST"
//! url = "https://orders.example.com/orders/{order_id}/cancel"
//! headers = { Authorization = "Bearer ${ORDERS_TOKEN}" }   # secrets from the environment
//! ```
//!
//! `read` tools run as soon as the model calls them; `write` and `dangerous` ones become a
//! pending action that the caller must approve first ([`engine`], [`runner`]). Every request
//! goes through the SSRF guard ([`crate::outbound`]).

pub mod actions;
pub mod builtin;
pub mod client_mcp;
pub mod confirm;
pub mod engine;
pub mod http;
pub mod mcp;
pub mod openapi;
pub mod runner;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::llm::ToolSpec;

pub use actions::{ActionStatus, ActionStore, MemoryActions, PendingAction};
pub use engine::{ToolAudit, ToolEngine, ToolEngineConfig};

/// How much a tool changes the world, which decides whether it needs the caller's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SideEffect {
    Read,
    Write,
    Dangerous,
}

impl SideEffect {
    pub fn needs_confirmation(self) -> bool {
        !matches!(self, Self::Read)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Dangerous => "dangerous",
        }
    }
}

pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Characters of a tool's answer the model sees.
pub const DEFAULT_MAX_RESPONSE_CHARS: usize = 2_000;

/// One server-side tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    /// Filled from the table's key.
    #[serde(default)]
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments (an object schema).
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
    pub effect: SideEffect,
    /// The whole call, retries included.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// What the caller approves, with `{argument}` placeholders ("cancel order {order_id}");
    /// default: the description and the arguments.
    #[serde(default)]
    pub confirm: Option<String>,
    /// The service deduplicates by the `Idempotency-Key` header, so a write may be retried.
    #[serde(default)]
    pub idempotent: bool,
    /// An HTTP request (declared tools, OpenAPI imports)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSpec>,
    /// ...or a tool of an MCP server (discovered, never declared by hand)...
    #[serde(skip)]
    pub mcp: Option<McpBinding>,
    /// ...or one the gateway provides (hand-off, hang-up).
    #[serde(skip)]
    pub builtin: Option<builtin::Builtin>,
}

/// Which MCP server's tool a [`ToolDef`] calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpBinding {
    pub server: String,
    /// The tool's name on that server (the model sees `{server}_{tool}`).
    pub tool: String,
}

/// How a tool call becomes an HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    #[serde(default = "default_method")]
    pub method: String,
    /// `{argument}` placeholders are filled percent-encoded.
    pub url: String,
    /// Header values may name environment variables as `${NAME}` (secrets stay out of files
    /// and logs).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body template: a string `"{argument}"` becomes the argument's JSON value, other
    /// placeholders are filled as text. Omitted: POST/PUT/PATCH send the arguments that the
    /// URL did not use.
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default = "default_max_response")]
    pub max_response_chars: usize,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_method() -> String {
    "GET".into()
}
fn default_max_response() -> usize {
    DEFAULT_MAX_RESPONSE_CHARS
}

impl ToolDef {
    /// What the model is shown.
    pub fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }

    /// Problems that make the tool unusable, found at load time rather than mid-call.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::tools::confirm::is_tool_name(&self.name) {
            return Err("a tool name is 1-64 letters, digits, '_' or '-'".into());
        }
        if self.parameters.get("type").and_then(Value::as_str) != Some("object") {
            return Err("parameters must be an object schema".into());
        }
        if !(1..=120_000).contains(&self.timeout_ms) {
            return Err("timeout_ms must be 1..120000".into());
        }
        let Some(http) = &self.http else {
            return match (&self.mcp, &self.builtin) {
                (None, None) => Err("an `http` table is required".into()),
                _ => Ok(()),
            };
        };
        if reqwest::Method::from_bytes(http.method.to_ascii_uppercase().as_bytes()).is_err() {
            return Err(format!("http.method {:?} is not a method", http.method));
        }
        let probe = http.url.replace(['{', '}'], "");
        let scheme_ok = probe.starts_with("http://") || probe.starts_with("https://");
        if !scheme_ok || reqwest::Url::parse(&probe).is_err() {
            return Err(format!("http.url {:?} is not an http(s) URL", http.url));
        }
        Ok(())
    }

    /// Where calls go, for listings: `GET https://...` or `mcp:server/tool`.
    pub fn target(&self) -> String {
        match (&self.http, &self.mcp) {
            (Some(h), _) => format!("{} {}", h.method.to_uppercase(), h.url),
            (None, Some(m)) => format!("mcp:{}/{}", m.server, m.tool),
            (None, None) => format!("builtin:{}", self.name),
        }
    }
}

/// Tools by name, as loaded from the persona file.
pub type ToolDefs = BTreeMap<String, ToolDef>;

//! MCP servers a Realtime client declares in its session (`session.tools[]` with
//! `"type": "mcp"`), run the way OpenAI's Realtime API runs them: the gateway connects
//! (through the outbound guard, like every tool), lists the tools, offers them to the model
//! and runs its calls itself. The client sees `mcp_list_tools` and `mcp_call` items; a call
//! its `require_approval` covers waits as an `mcp_approval_request` item until the client
//! answers with an `mcp_approval_response` and asks for a new response.
//!
//! Unlike the operator's servers (`mcp.rs`, persona file), these belong to the session that
//! declared them: connected when declared, reachable from no other session, gone with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::engine::parse_arguments;
use super::mcp::{McpHub, McpServerConfig, model_tool_name};
use super::{McpBinding, SideEffect, ToolDef};
use crate::llm::ToolCall;
use crate::outbound::OutboundClient;

/// How long one call to a client's server may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Tools one server may offer the model (more: name the wanted ones in `allowed_tools`).
pub const MAX_TOOLS: usize = 128;
/// Servers one session may declare.
pub const MAX_SERVERS: usize = 16;
/// Calls in flight at once to one declared server: a call's own, so few.
pub const MAX_CONCURRENT_CALLS: usize = 16;

/// A client's declaration of one server.
#[derive(Clone, PartialEq)]
pub struct ClientMcpServer {
    /// What the client calls it (`server_label`): letters, digits, `_` and `-`.
    pub label: String,
    pub url: String,
    /// Sent with every request (`authorization` becomes `Authorization: Bearer ...`); never
    /// logged or shown back to the client.
    pub headers: BTreeMap<String, String>,
    /// Only these of its tools (`None`: all it lists).
    pub allowed_tools: Option<Vec<String>>,
    pub approval: Approval,
}

impl std::fmt::Debug for ClientMcpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMcpServer")
            .field("label", &self.label)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("allowed_tools", &self.allowed_tools)
            .field("approval", &self.approval)
            .finish()
    }
}

/// Which calls wait for the client's approval (`require_approval`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Approval {
    /// Every call (OpenAI's default).
    #[default]
    Always,
    Never,
    /// The filter object: tools in `never` run at once; every other one waits. `always`
    /// is kept to be shown back.
    Filter {
        always: Vec<String>,
        never: Vec<String>,
    },
}

impl Approval {
    pub fn needed(&self, tool: &str) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Filter { never, .. } => !never.iter().any(|n| n == tool),
        }
    }
}

/// One tool of a client's server.
#[derive(Debug, Clone)]
pub struct ClientTool {
    pub server_label: String,
    /// Its name on the server (what `mcp_call.name` says).
    pub name: String,
    /// As the model sees it: named `{label}_{name}`, with the server's description and input
    /// schema.
    pub def: ToolDef,
    pub needs_approval: bool,
}

/// One connected server of a session and the tools it listed.
pub struct ClientServer {
    pub declared: ClientMcpServer,
    hub: McpHub,
    pub tools: Vec<ClientTool>,
}

impl std::fmt::Debug for ClientServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientServer")
            .field("declared", &self.declared)
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

/// What a call returned: the output, or the error in the Realtime `mcp_call.error` shape.
pub type CallResult = Result<String, Value>;

impl ClientServer {
    /// Connect, list the tools and keep the allowed ones; an error says why not.
    pub async fn connect(declared: ClientMcpServer, guard: OutboundClient) -> Result<Self, String> {
        let config = McpServerConfig {
            command: None,
            args: Vec::new(),
            url: Some(declared.url.clone()),
            headers: declared.headers.clone(),
            effect: SideEffect::Read,
            effects: BTreeMap::new(),
            tools: declared.allowed_tools.clone(),
            timeout_ms: CALL_TIMEOUT.as_millis() as u64,
            max_concurrent_calls: MAX_CONCURRENT_CALLS,
        };
        config.validate()?;
        let (hub, defs) = McpHub::connect_one(&declared.label, &config, guard).await?;
        if defs.len() > MAX_TOOLS {
            return Err(format!(
                "the server lists {} tools; at most {MAX_TOOLS} are offered to the model: \
                 name the ones wanted in allowed_tools",
                defs.len()
            ));
        }
        let tools = defs
            .into_iter()
            .filter_map(|def| {
                let name = def.mcp.as_ref()?.tool.clone();
                Some(ClientTool {
                    server_label: declared.label.clone(),
                    needs_approval: declared.approval.needed(&name),
                    name,
                    def,
                })
            })
            .collect();
        Ok(Self {
            declared,
            hub,
            tools,
        })
    }

    /// The `tools` of its `mcp_list_tools` item.
    pub fn listing(&self) -> Vec<Value> {
        self.tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.def.description, "input_schema": t.def.parameters}))
            .collect()
    }

    /// Run `tool` with the model's `arguments` (a JSON object as text).
    pub async fn call(&self, tool: &ClientTool, arguments: &str) -> CallResult {
        let args = match parse_arguments(&tool.def.parameters, arguments) {
            Ok(a) => a,
            Err(message) => {
                return Err(json!({"type": "protocol_error", "code": -32602, "message": message}));
            }
        };
        let binding = McpBinding {
            server: tool.server_label.clone(),
            tool: tool.name.clone(),
        };
        let out = self.hub.call(&binding, &args, CALL_TIMEOUT).await;
        match out.error {
            None => Ok(out.content),
            Some(kind) => {
                let message = serde_json::from_str::<Value>(&out.content)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or(out.content);
                Err(match kind {
                    "tool_error" => json!({"type": "tool_execution_error", "message": message}),
                    _ => json!({"type": "protocol_error", "code": -32000, "message": message}),
                })
            }
        }
    }
}

/// The client servers a response may call.
#[derive(Debug, Clone, Default)]
pub struct ClientTools {
    /// Offered to the model.
    pub servers: Vec<Arc<ClientServer>>,
    /// Not offered, but an approved call to one still runs (a server an earlier response
    /// declared).
    pub reachable: Vec<Arc<ClientServer>>,
}

impl ClientTools {
    pub fn is_empty(&self) -> bool {
        self.servers.iter().all(|s| s.tools.is_empty())
    }

    /// Every tool, as the model is offered them.
    pub fn defs(&self) -> impl Iterator<Item = &ToolDef> {
        self.servers
            .iter()
            .flat_map(|s| s.tools.iter().map(|t| &t.def))
    }

    /// The tool the model called `model_name`, and its server.
    pub fn by_model_name(&self, model_name: &str) -> Option<(&Arc<ClientServer>, &ClientTool)> {
        self.servers.iter().find_map(|s| {
            s.tools
                .iter()
                .find(|t| t.def.name == model_name)
                .map(|t| (s, t))
        })
    }

    /// A tool by its server's label and URL and its own name (an approved call): an offered
    /// server's first; with no URL known, the first of that label.
    pub fn by_label(
        &self,
        label: &str,
        url: Option<&str>,
        name: &str,
    ) -> Option<(&Arc<ClientServer>, &ClientTool)> {
        let server = self
            .servers
            .iter()
            .chain(&self.reachable)
            .find(|s| s.declared.label == label && url.is_none_or(|u| s.declared.url == u))?;
        server
            .tools
            .iter()
            .find(|t| t.name == name)
            .map(|t| (server, t))
    }
}

/// The model's call of a client server's tool, named as the model is offered it
/// (`{label}_{name}`), for the chat history.
pub fn model_call(id: &str, server_label: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        name: model_tool_name(server_label, name),
        arguments: arguments.to_owned(),
    }
}

/// One call to a client's server, for [`super::ToolEngine::note_client_call`].
#[derive(Debug)]
pub struct ClientCallRecord<'a> {
    pub server_label: &'a str,
    pub tool: &'a str,
    pub arguments: &'a str,
    pub approval_request_id: Option<&'a str>,
    /// The error's type (`tool_execution_error`, `protocol_error`), or `None`.
    pub error: Option<&'a str>,
    pub elapsed: Duration,
}

/// A call the client approved (`mcp_approval_response`), for the next response to run before
/// the model goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedCall {
    pub approval_request_id: String,
    pub server_label: String,
    /// The URL of the server it was asked for, when the call knows it (see
    /// [`ClientTools::by_label`]).
    pub server_url: Option<String>,
    pub name: String,
    pub arguments: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_policies() {
        assert!(Approval::Always.needed("x"));
        assert!(!Approval::Never.needed("x"));
        let filter = Approval::Filter {
            always: vec!["refund".into()],
            never: vec!["order_status".into()],
        };
        assert!(!filter.needed("order_status"));
        assert!(filter.needed("refund"));
        assert!(
            filter.needed("unlisted"),
            "unlisted tools wait, as by default"
        );
    }

    #[test]
    fn debug_output_keeps_header_values_out() {
        let declared = ClientMcpServer {
            label: "shop".into(),
            url: "https://mcp.example.com".into(),
            headers: BTreeMap::from([("Authorization".into(), "Bearer s3cret".into())]),
            allowed_tools: None,
            approval: Approval::Never,
        };
        let shown = format!("{declared:?}");
        assert!(
            shown.contains("Authorization") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}

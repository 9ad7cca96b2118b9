//! LLM providers: one streaming trait, the OpenAI-compatible client, and the fallback chain.
//!
//! A provider turns a [`ChatRequest`] into a stream of [`LlmEvent`]s. It knows nothing of
//! calls, audio or the Realtime protocol; the response task in [`crate::call`] consumes it.

mod embedded;
mod fallback;
mod openai;

use std::pin::Pin;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

pub use embedded::{EmbeddedLlm, to_turns};
pub use fallback::FallbackChain;
pub(crate) use openai::install_crypto_provider;
pub use openai::{OpenAiCompatible, OpenAiConfig};

/// One message of the conversation as the LLM sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    System(String),
    User(String),
    Assistant {
        content: String,
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        call_id: String,
        content: String,
    },
}

impl ChatMessage {
    /// A tool call of the model's and its answer, as the two messages chat APIs expect.
    pub fn tool_exchange(call: ToolCall, content: String) -> [ChatMessage; 2] {
        let call_id = call.id.clone();
        [
            ChatMessage::Assistant {
                content: String::new(),
                tool_calls: vec![call],
            },
            ChatMessage::Tool { call_id, content },
        ]
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON schema of the arguments.
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
}

fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// Whether and which tools the model may call.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (0..1].
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Sampling seed, for reproducible replies where the provider supports it.
    pub seed: Option<u64>,
    /// The model to ask OpenAI-compatible providers for; `None`: each provider's own.
    /// The embedded model ignores it.
    pub model: Option<String>,
    /// Work nobody is waiting on (conversation summaries): the embedded model stops it
    /// for any live turn, so it never delays a reply.
    pub background: bool,
    /// The conversation this turn continues, where the channel knows one that lasts (a call,
    /// a chat WebSocket, an IM conversation, a chat completion's named session); the
    /// orchestrator puts the tenant before it. The embedded model keeps a KV cache per
    /// conversation under it; other providers ignore it. A one-off request leaves it `None`:
    /// naming it would give every request a cache of its own.
    pub conversation: Option<String>,
}

impl ChatRequest {
    /// The user's words in the last user message (what a turn is about), or "". In an
    /// assembled prompt that message also carries the turn's context items before the
    /// words; they are left out.
    pub fn latest_user_text(&self) -> &str {
        let latest = self
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                ChatMessage::User(t) => Some(t.as_str()),
                _ => None,
            })
            .unwrap_or("");
        crate::context::split_user_message(latest).1
    }
}

/// Fold a tool-call event into the calls streamed so far (arguments arrive in pieces).
pub fn add_tool_event(calls: &mut Vec<ToolCall>, ev: &LlmEvent) {
    match ev {
        LlmEvent::ToolCallStart { id, name, .. } => calls.push(ToolCall {
            id: id.clone(),
            name: name.clone(),
            arguments: String::new(),
        }),
        LlmEvent::ToolCallArguments { index, delta } => {
            let at = (*index as usize).min(calls.len().saturating_sub(1));
            if let Some(c) = calls.get_mut(at) {
                c.arguments.push_str(delta);
            }
        }
        LlmEvent::Text(_) | LlmEvent::Usage(_) | LlmEvent::Action(_) => {}
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u32,
    /// Input tokens the provider served from its prompt cache.
    pub cached_input_tokens: u32,
    pub output_tokens: u32,
}

/// What a provider streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// More reply text.
    Text(String),
    /// A tool call begins (`index` orders parallel calls).
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallArguments { index: u32, delta: String },
    /// Token counts, when the provider reports them.
    Usage(Usage),
    /// What the server-side tool loop did (never from a provider).
    Action(ActionNotice),
}

/// Server-side tool events, for channels that show them (a chat widget's approve/reject
/// buttons, the Realtime custom events); others ignore them.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionNotice {
    /// A read tool ran; its answer went to the model.
    ToolRan { name: String, error: Option<String> },
    /// A change waits for the caller's approval; the question follows as text.
    ConfirmationRequested(Box<crate::tools::PendingAction>),
    /// A pending action was settled: `executed`, `failed`, `rejected`, `expired`,
    /// `superseded`.
    Resolved { action_id: String, status: String },
    /// The call should be hung up or transferred once this reply has been heard.
    CallControl(crate::tools::builtin::CallControl),
    /// A call to a tool of a client-declared MCP server starts (`tools/client_mcp.rs`).
    McpCallStarted(McpCallNotice),
    /// It ended: its output, or the error in the Realtime `mcp_call.error` shape.
    McpCallDone {
        call_id: String,
        result: Result<String, serde_json::Value>,
    },
    /// A call waits for the client's approval; the reply ends here.
    McpApprovalRequested(McpCallNotice),
}

/// A call to a client-declared MCP server's tool.
#[derive(Debug, Clone, PartialEq)]
pub struct McpCallNotice {
    /// The model's id for the call.
    pub call_id: String,
    pub server_label: String,
    /// The server's URL: which server of that label (a response may declare one under a
    /// session server's label).
    pub server_url: String,
    /// The tool's name on its server.
    pub name: String,
    pub arguments: String,
    /// The approval it runs under, when the client approved it first.
    pub approval_request_id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("provider {provider} failed: {message}")]
    Provider { provider: String, message: String },
    #[error("provider {provider} sent no token within {timeout_ms} ms")]
    FirstTokenTimeout { provider: String, timeout_ms: u64 },
    #[error("every LLM provider failed; last: {0}")]
    AllFailed(Box<LlmError>),
    /// The tenant's token budget is spent (see `crate::budget`); nothing was asked.
    #[error("the token budget is spent; try again in {} ms", retry_after.as_millis())]
    TokenBudget { retry_after: std::time::Duration },
}

impl LlmError {
    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Provider { .. } => "provider_error",
            Self::FirstTokenTimeout { .. } => "first_token_timeout",
            Self::AllFailed(_) => "all_providers_failed",
            Self::TokenBudget { .. } => "token_budget",
        }
    }
}

pub type LlmStream = Pin<Box<dyn Stream<Item = Result<LlmEvent, LlmError>> + Send>>;

/// Anything that streams chat completions. Dropping the stream cancels the generation.
pub trait LlmProvider: Send + Sync {
    /// A short name for logs and metrics (`model@host`).
    fn name(&self) -> &str;
    /// Start generating. Errors, including failing to connect, arrive as stream items.
    fn stream(&self, request: ChatRequest) -> LlmStream;
}

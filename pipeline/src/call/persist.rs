//! The persist stage of a call: finished conversation items go to the call's [`TurnSink`]
//! in conversation order, each once. A response's items are handed over when it ends
//! (cancelled replies already cut to what the caller heard), and everything left when the
//! call ends, so a caller who hangs up mid-reply still leaves the turn behind.

use super::actor::CallActor;
use crate::conversation::{ItemKind, ItemStatus, Role};

/// A conversation item as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredItem {
    Message {
        /// `user` or `assistant`.
        role: &'static str,
        text: String,
        /// An assistant reply cut short: `text` is what the caller heard.
        truncated: bool,
    },
    ToolCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    ToolResult {
        call_id: String,
        output: String,
    },
}

/// Where a call's finished items go. Called on the call's task: implementations queue the
/// work and return at once.
pub trait TurnSink: Send + Sync {
    fn record(&self, call_id: &str, items: Vec<StoredItem>);
    /// The call is over (`status`: `completed` or `disconnected`).
    fn ended(&self, call_id: &str, status: &'static str);
}

impl CallActor {
    /// Hand over every item not yet stored, up to and including `through` (all when `None`).
    /// User audio still being transcribed waits for its transcript unless the call is ending.
    pub(super) fn persist_through(&mut self, through: Option<&str>, ending: bool) {
        let Some(sink) = self.deps.sink.clone() else {
            return;
        };
        let mut out = Vec::new();
        for item in self.conversation.items() {
            if self.persisted.contains(&item.id) {
                if through == Some(item.id.as_str()) {
                    break;
                }
                continue;
            }
            let stored = match &item.kind {
                ItemKind::Message { role, content } => {
                    let pending = content.iter().any(|c| {
                        matches!(
                            c,
                            crate::conversation::Content::InputAudio { transcript: None }
                        )
                    });
                    if pending && !ending {
                        break;
                    }
                    let text: String = content
                        .iter()
                        .map(|c| c.text())
                        .collect::<Vec<_>>()
                        .join(" ");
                    match role {
                        Role::User => Some(StoredItem::Message {
                            role: "user",
                            text,
                            truncated: false,
                        }),
                        Role::Assistant => Some(StoredItem::Message {
                            role: "assistant",
                            text,
                            truncated: item.status == ItemStatus::Incomplete,
                        }),
                        Role::System => None,
                    }
                }
                ItemKind::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => Some(StoredItem::ToolCall {
                    call_id: call_id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                }),
                ItemKind::FunctionCallOutput { call_id, output } => Some(StoredItem::ToolResult {
                    call_id: call_id.clone(),
                    output: output.clone(),
                }),
                // A call to a client's MCP server is stored as a tool call and its result,
                // once it has ended (a response ends only after its calls have).
                ItemKind::McpCall { .. } => item.mcp_call_exchange().map(|(call, output)| {
                    out.push(StoredItem::ToolCall {
                        call_id: call.id.clone(),
                        name: call.name,
                        arguments: call.arguments,
                    });
                    StoredItem::ToolResult {
                        call_id: call.id,
                        output,
                    }
                }),
                ItemKind::McpListTools { .. }
                | ItemKind::McpApprovalRequest { .. }
                | ItemKind::McpApprovalResponse { .. } => None,
            };
            self.persisted.insert(item.id.clone());
            out.extend(stored);
            if through == Some(item.id.as_str()) {
                break;
            }
        }
        if !out.is_empty() {
            sink.record(&self.call_id, out);
        }
    }
}

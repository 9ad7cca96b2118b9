//! The conversation of one call: items in order, in the Realtime API's item shape, and the
//! chat history the LLM sees (built from what the caller actually heard).

use serde::{Deserialize, Serialize};

use crate::llm::{ChatMessage, ToolCall};
use crate::tools::client_mcp::{ApprovedCall, model_call};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    #[default]
    Completed,
    InProgress,
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    InputText {
        text: String,
    },
    InputAudio {
        #[serde(default)]
        transcript: Option<String>,
    },
    #[serde(alias = "text")]
    OutputText {
        text: String,
    },
    #[serde(alias = "audio")]
    OutputAudio {
        #[serde(default)]
        transcript: String,
    },
}

impl Content {
    /// The words of this part (a transcript still pending counts as none).
    pub fn text(&self) -> &str {
        match self {
            Content::InputText { text } | Content::OutputText { text } => text,
            Content::InputAudio { transcript } => transcript.as_deref().unwrap_or(""),
            Content::OutputAudio { transcript } => transcript,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemKind {
    Message {
        role: Role,
        content: Vec<Content>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
    /// The tools a client-declared MCP server listed (`tools/client_mcp.rs`).
    McpListTools {
        server_label: String,
        #[serde(default)]
        tools: Vec<serde_json::Value>,
    },
    /// A call the gateway made to a client-declared MCP server: its output, or its error.
    McpCall {
        server_label: String,
        name: String,
        arguments: String,
        #[serde(default)]
        approval_request_id: Option<String>,
        #[serde(default)]
        output: Option<String>,
        #[serde(default)]
        error: Option<serde_json::Value>,
    },
    /// A call waiting for the client's approval.
    McpApprovalRequest {
        server_label: String,
        name: String,
        arguments: String,
    },
    /// The client's answer to an approval request.
    McpApprovalResponse {
        approval_request_id: String,
        approve: bool,
        #[serde(default)]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(default)]
    pub id: String,
    #[serde(default = "item_object")]
    pub object: String,
    #[serde(flatten)]
    pub kind: ItemKind,
    #[serde(default)]
    pub status: ItemStatus,
}

fn item_object() -> String {
    "realtime.item".into()
}

impl Item {
    /// An `mcp_call` as the model's tool call (named as the model was offered the tool) and
    /// its answer: the output, the error, or that it did not finish.
    pub fn mcp_call_exchange(&self) -> Option<(ToolCall, String)> {
        let ItemKind::McpCall {
            server_label,
            name,
            arguments,
            output,
            error,
            ..
        } = &self.kind
        else {
            return None;
        };
        let content = match (output, error) {
            (Some(o), _) => o.clone(),
            (None, Some(e)) => serde_json::json!({"error": e}).to_string(),
            (None, None) => serde_json::json!({"error": "interrupted",
                "message": "The call did not finish."})
            .to_string(),
        };
        Some((model_call(&self.id, server_label, name, arguments), content))
    }

    pub fn new(id: String, kind: ItemKind, status: ItemStatus) -> Self {
        Self {
            id,
            object: item_object(),
            kind,
            status,
        }
    }

    pub fn message(id: String, role: Role, content: Vec<Content>) -> Self {
        Self::new(
            id,
            ItemKind::Message { role, content },
            ItemStatus::Completed,
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConversationError {
    #[error("item {0} does not exist")]
    NotFound(String),
    #[error("an item with id {0} already exists")]
    Duplicate(String),
}

/// Items in conversation order.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    items: Vec<Item>,
}

impl Conversation {
    /// A context of these items as they are (a response's own `input`; ids may repeat).
    pub fn from_items(items: Vec<Item>) -> Self {
        Self { items }
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn last_id(&self) -> Option<&str> {
        self.items.last().map(|i| i.id.as_str())
    }

    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Replace an assistant message's text or transcript (after truncation).
    pub fn set_assistant_text(&mut self, item_id: &str, text: &str) {
        if let Some(item) = self.get_mut(item_id)
            && let ItemKind::Message { content, .. } = &mut item.kind
        {
            for part in content.iter_mut() {
                match part {
                    Content::OutputAudio { transcript } => text.clone_into(transcript),
                    Content::OutputText { text: t } => text.clone_into(t),
                    _ => {}
                }
            }
        }
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Item> {
        self.items.iter_mut().find(|i| i.id == id)
    }

    /// Insert after `previous` (`None`: at the end; `Some("root")`: at the start).
    /// Returns the id of the item it now follows.
    pub fn insert(
        &mut self,
        item: Item,
        previous: Option<&str>,
    ) -> Result<Option<String>, ConversationError> {
        if self.get(&item.id).is_some() {
            return Err(ConversationError::Duplicate(item.id));
        }
        let at = match previous {
            None => self.items.len(),
            Some("root") => 0,
            Some(p) => {
                self.items
                    .iter()
                    .position(|i| i.id == p)
                    .ok_or_else(|| ConversationError::NotFound(p.to_owned()))?
                    + 1
            }
        };
        let prev_id = at.checked_sub(1).map(|i| self.items[i].id.clone());
        self.items.insert(at, item);
        Ok(prev_id)
    }

    pub fn delete(&mut self, id: &str) -> Result<Item, ConversationError> {
        let at = self
            .items
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| ConversationError::NotFound(id.to_owned()))?;
        Ok(self.items.remove(at))
    }

    /// Whether the conversation ends in tool results the model has not answered yet.
    pub fn trailing_tool_rounds(&self) -> u32 {
        let mut rounds = 0;
        let mut in_round = false;
        for item in self.items.iter().rev() {
            match &item.kind {
                ItemKind::FunctionCallOutput { .. } => in_round = true,
                ItemKind::FunctionCall { .. } if in_round => {
                    rounds += 1;
                    in_round = false;
                }
                ItemKind::Message {
                    role: Role::User, ..
                } => break,
                // MCP calls are answered within the response that made them.
                _ => {}
            }
        }
        rounds
    }

    /// The client's answer to approval request `id`, if any.
    pub fn approval_of(&self, id: &str) -> Option<(bool, Option<&str>)> {
        self.items.iter().find_map(|i| match &i.kind {
            ItemKind::McpApprovalResponse {
                approval_request_id,
                approve,
                reason,
            } if approval_request_id == id => Some((*approve, reason.as_deref())),
            _ => None,
        })
    }

    /// Calls the client approved that have not run yet.
    pub fn approved_mcp_calls(&self) -> Vec<ApprovedCall> {
        let ran = |id: &str| {
            self.items.iter().any(|i| {
                matches!(&i.kind, ItemKind::McpCall { approval_request_id: Some(a), .. } if a == id)
            })
        };
        self.items
            .iter()
            .filter_map(|i| match &i.kind {
                ItemKind::McpApprovalRequest {
                    server_label,
                    name,
                    arguments,
                } if self.approval_of(&i.id).is_some_and(|(yes, _)| yes) && !ran(&i.id) => {
                    Some(ApprovedCall {
                        approval_request_id: i.id.clone(),
                        server_label: server_label.clone(),
                        server_url: None,
                        name: name.clone(),
                        arguments: arguments.clone(),
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// The history as chat messages after `system`. Consecutive function calls become one
    /// assistant message with several tool calls, as chat APIs expect.
    pub fn chat_messages(&self, system: &str) -> Vec<ChatMessage> {
        let mut out = vec![ChatMessage::System(system.to_owned())];
        for item in &self.items {
            match &item.kind {
                ItemKind::Message { role, content } => {
                    let text = content
                        .iter()
                        .map(Content::text)
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if text.is_empty() {
                        continue;
                    }
                    out.push(match role {
                        Role::User => ChatMessage::User(text),
                        Role::System => ChatMessage::System(text),
                        Role::Assistant => ChatMessage::Assistant {
                            content: text,
                            tool_calls: Vec::new(),
                        },
                    });
                }
                ItemKind::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => {
                    let call = ToolCall {
                        id: call_id.clone(),
                        name: name.clone(),
                        arguments: arguments.clone(),
                    };
                    match out.last_mut() {
                        Some(ChatMessage::Assistant { tool_calls, .. }) => tool_calls.push(call),
                        _ => out.push(ChatMessage::Assistant {
                            content: String::new(),
                            tool_calls: vec![call],
                        }),
                    }
                }
                ItemKind::FunctionCallOutput { call_id, output } => out.push(ChatMessage::Tool {
                    call_id: call_id.clone(),
                    content: output.clone(),
                }),
                ItemKind::McpCall { .. } => {
                    if let Some((call, content)) = item.mcp_call_exchange() {
                        out.extend(ChatMessage::tool_exchange(call, content));
                    }
                }
                // A refusal is the answer to the model's call; an approved request is answered
                // by the call it led to, and an unanswered one by nothing yet.
                ItemKind::McpApprovalRequest {
                    server_label,
                    name,
                    arguments,
                } => {
                    if let Some((false, reason)) = self.approval_of(&item.id) {
                        let content = serde_json::json!({"status": "declined",
                            "message": "The user declined to run this tool.", "reason": reason})
                        .to_string();
                        let call = model_call(&item.id, server_label, name, arguments);
                        out.extend(ChatMessage::tool_exchange(call, content));
                    }
                }
                ItemKind::McpListTools { .. } | ItemKind::McpApprovalResponse { .. } => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, text: &str) -> Item {
        Item::message(
            id.into(),
            Role::User,
            vec![Content::InputText { text: text.into() }],
        )
    }

    #[test]
    fn items_serialize_in_the_realtime_shape() {
        let item = Item::message(
            "item_1".into(),
            Role::Assistant,
            vec![Content::OutputAudio {
                transcript: "Hi.".into(),
            }],
        );
        let v = serde_json::to_value(&item).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": "item_1", "object": "realtime.item", "type": "message",
                "role": "assistant", "status": "completed",
                "content": [{"type": "output_audio", "transcript": "Hi."}]})
        );
        let back: Item = serde_json::from_value(v).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn insert_delete_and_history() {
        let mut c = Conversation::default();
        c.insert(user("a", "one"), None).unwrap();
        c.insert(user("c", "three"), None).unwrap();
        assert_eq!(
            c.insert(user("b", "two"), Some("a")).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(c.insert(user("z", "zero"), Some("root")).unwrap(), None);
        assert_eq!(
            c.insert(user("x", "x"), Some("nope")),
            Err(ConversationError::NotFound("nope".into()))
        );
        assert!(matches!(
            c.insert(user("a", "dup"), None),
            Err(ConversationError::Duplicate(_))
        ));
        c.delete("z").unwrap();
        let ids: Vec<_> = c.items().iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let msgs = c.chat_messages("sys");
        assert_eq!(msgs[0], ChatMessage::System("sys".into()));
        assert_eq!(msgs[2], ChatMessage::User("two".into()));
    }

    #[test]
    fn function_calls_group_and_count_rounds() {
        let mut c = Conversation::default();
        c.insert(user("u", "weather?"), None).unwrap();
        for (i, call) in ["c1", "c2"].iter().enumerate() {
            let kind = ItemKind::FunctionCall {
                call_id: (*call).into(),
                name: "w".into(),
                arguments: "{}".into(),
            };
            c.insert(
                Item::new(format!("f{i}"), kind, ItemStatus::Completed),
                None,
            )
            .unwrap();
        }
        for call in ["c1", "c2"] {
            let kind = ItemKind::FunctionCallOutput {
                call_id: call.into(),
                output: "sunny".into(),
            };
            c.insert(
                Item::new(format!("o{call}"), kind, ItemStatus::Completed),
                None,
            )
            .unwrap();
        }
        let msgs = c.chat_messages("s");
        assert!(
            matches!(&msgs[2], ChatMessage::Assistant { tool_calls, .. } if tool_calls.len() == 2)
        );
        assert_eq!(c.trailing_tool_rounds(), 1);
    }

    fn mcp_item(id: &str, kind: ItemKind) -> Item {
        Item::new(id.into(), kind, ItemStatus::Completed)
    }

    #[test]
    fn mcp_items_in_the_history() {
        let mut c = Conversation::default();
        c.insert(user("u", "order 42?"), None).unwrap();
        let listing = ItemKind::McpListTools {
            server_label: "shop".into(),
            tools: vec![serde_json::json!({"name": "order_status"})],
        };
        c.insert(mcp_item("l", listing), Some("root")).unwrap();
        let call = ItemKind::McpCall {
            server_label: "shop".into(),
            name: "order_status".into(),
            arguments: r#"{"order_id":"42"}"#.into(),
            approval_request_id: None,
            output: Some("shipped".into()),
            error: None,
        };
        c.insert(mcp_item("m", call), None).unwrap();
        let ask = |id: &str, name: &str| {
            mcp_item(
                id,
                ItemKind::McpApprovalRequest {
                    server_label: "shop".into(),
                    name: name.into(),
                    arguments: "{}".into(),
                },
            )
        };
        let answer = |id: &str, approve: bool| {
            mcp_item(
                &format!("{id}-answer"),
                ItemKind::McpApprovalResponse {
                    approval_request_id: id.into(),
                    approve,
                    reason: None,
                },
            )
        };
        for (id, name) in [("yes", "refund"), ("no", "wipe"), ("open", "coupon")] {
            c.insert(ask(id, name), None).unwrap();
        }
        c.insert(answer("yes", true), None).unwrap();
        c.insert(answer("no", false), None).unwrap();

        let msgs = c.chat_messages("sys");
        let calls: Vec<(&str, &str)> = msgs
            .iter()
            .filter_map(|m| match m {
                ChatMessage::Assistant { tool_calls, .. } => tool_calls.first(),
                _ => None,
            })
            .map(|t| (t.id.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            calls,
            [("m", "shop_order_status"), ("no", "shop_wipe")],
            "the listing, the approved and the unanswered request are not calls yet"
        );
        assert!(
            matches!(&msgs[3], ChatMessage::Tool { call_id, content } if call_id == "m" && content == "shipped")
        );
        assert!(
            matches!(&msgs[5], ChatMessage::Tool { content, .. } if content.contains("declined"))
        );

        let approved = c.approved_mcp_calls();
        assert_eq!(approved.len(), 1);
        assert_eq!(
            (
                approved[0].approval_request_id.as_str(),
                approved[0].name.as_str()
            ),
            ("yes", "refund")
        );
        // Once its call has run, it is not approved-and-waiting any more.
        let ran = ItemKind::McpCall {
            server_label: "shop".into(),
            name: "refund".into(),
            arguments: "{}".into(),
            approval_request_id: Some("yes".into()),
            output: None,
            error: Some(serde_json::json!({"type": "tool_execution_error", "message": "no"})),
        };
        c.insert(mcp_item("r", ran), None).unwrap();
        assert!(c.approved_mcp_calls().is_empty());
        assert_eq!(
            c.trailing_tool_rounds(),
            0,
            "MCP calls are answered within their response"
        );
        let item: Item =
            serde_json::from_value(serde_json::json!({"type": "mcp_approval_response",
            "approval_request_id": "open", "approve": true}))
            .unwrap();
        assert!(matches!(
            item.kind,
            ItemKind::McpApprovalResponse { approve: true, .. }
        ));
    }
}

//! One text-chat WebSocket connection: the conversation lives here (so a widget sends only
//! what the user types), every turn runs through the orchestrator, tokens stream back as
//! they are generated, tool calls go to the client and their results continue the reply,
//! and finished items go to the session's [`TurnSink`] as they happen.

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_pipeline::call::{StoredItem, TurnSink};
use switchboard_pipeline::llm::{
    ChatMessage, ChatRequest, LlmEvent, ToolCall, ToolChoice, ToolSpec, add_tool_event,
};
use switchboard_pipeline::orchestrator::{Orchestrator, TurnRequest};

use super::protocol::{self, ClientMessage, ProtocolError};

/// Tool rounds in one reply before tools are withheld.
const MAX_TOOL_ROUNDS: usize = 10;

/// Who the conversation is and where it goes.
pub struct ChatSession {
    pub session_id: String,
    pub tenant: String,
    pub user: Option<String>,
    pub persona: Option<String>,
    pub orchestrator: Orchestrator,
    pub sink: Arc<dyn TurnSink>,
}

struct Conn {
    tx: SplitSink<WebSocket, Message>,
    rx: SplitStream<WebSocket>,
    open: bool,
}

impl Conn {
    async fn send(&mut self, v: Value) {
        if self.open
            && self
                .tx
                .send(Message::Text(Utf8Bytes::from(v.to_string())))
                .await
                .is_err()
        {
            self.open = false;
        }
    }

    async fn refuse(&mut self, e: ProtocolError) {
        self.send(protocol::error(&e)).await;
    }

    /// The next client message; `None` when the socket is gone.
    async fn next(&mut self) -> Option<Result<ClientMessage, ProtocolError>> {
        loop {
            match self.rx.next().await? {
                Ok(Message::Text(t)) => return Some(protocol::parse(&t)),
                Ok(Message::Binary(_)) => {
                    return Some(Err(ProtocolError {
                        code: "invalid_frame",
                        message: "send JSON text frames".into(),
                    }));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(Message::Close(_)) | Err(_) => {
                    self.open = false;
                    return None;
                }
            }
        }
    }
}

/// Serve one connection until the client closes it.
pub async fn serve(socket: WebSocket, s: ChatSession) {
    let (tx, rx) = socket.split();
    let mut conn = Conn { tx, rx, open: true };
    conn.send(protocol::session(&s.session_id)).await;
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut tools: Vec<ToolSpec> = Vec::new();
    while conn.open {
        let Some(msg) = conn.next().await else { break };
        match msg {
            Err(e) => conn.refuse(e).await,
            Ok(ClientMessage::Configure { tools: t }) => tools = t,
            Ok(ClientMessage::Cancel) => {}
            Ok(ClientMessage::ToolResult { call_id, .. }) => {
                conn.refuse(ProtocolError {
                    code: "unexpected_tool_result",
                    message: format!("no tool call '{call_id}' is waiting for a result"),
                })
                .await;
            }
            Ok(ClientMessage::Message { content }) => {
                s.sink.record(
                    &s.session_id,
                    vec![StoredItem::Message {
                        role: "user",
                        text: content.clone(),
                        truncated: false,
                    }],
                );
                history.push(ChatMessage::User(content));
                reply(&mut conn, &s, &mut history, &tools, None).await;
            }
            Ok(ClientMessage::Confirm { action_id, approve }) => {
                reply(
                    &mut conn,
                    &s,
                    &mut history,
                    &tools,
                    Some((action_id, approve)),
                )
                .await;
            }
        }
    }
    s.sink.ended(&s.session_id, "completed");
}

/// Generate the reply to the last message, through as many tool rounds as it takes.
async fn reply(
    conn: &mut Conn,
    s: &ChatSession,
    history: &mut Vec<ChatMessage>,
    tools: &[ToolSpec],
    mut decision: Option<(String, bool)>,
) {
    for round in 0..=MAX_TOOL_ROUNDS {
        let prepared = s
            .orchestrator
            .prepare(TurnRequest {
                tenant: s.tenant.clone(),
                channel: "chat_ws".into(),
                user: s.user.clone(),
                session: Some(s.session_id.clone()),
                persona: s.persona.clone(),
                request: ChatRequest {
                    messages: history.clone(),
                    tools: tools.to_vec(),
                    tool_choice: if round < MAX_TOOL_ROUNDS {
                        ToolChoice::Auto
                    } else {
                        ToolChoice::None
                    },
                    conversation: Some(s.session_id.clone()),
                    ..ChatRequest::default()
                },
                decision: decision.take(),
                speculative: Default::default(),
                ..Default::default()
            })
            .await;
        let metadata = prepared.metadata();
        let mut stream = s.orchestrator.respond(prepared);
        let (mut text, mut calls, mut cancelled, mut failed) =
            (String::new(), Vec::<ToolCall>::new(), false, None);
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    None => break,
                    Some(Ok(LlmEvent::Text(t))) => {
                        conn.send(protocol::token(&t)).await;
                        text.push_str(&t);
                    }
                    Some(Ok(LlmEvent::Action(notice))) => {
                        if let Some(v) = protocol::action(&notice) {
                            conn.send(v).await;
                        }
                    }
                    Some(Ok(other)) => add_tool_event(&mut calls, &other),
                    Some(Err(e)) => {
                        failed = Some(e.to_string());
                        break;
                    }
                },
                msg = conn.next() => match msg {
                    None => { cancelled = true; break; }
                    Some(Ok(ClientMessage::Cancel)) => { cancelled = true; break; }
                    Some(Ok(_)) => conn.refuse(ProtocolError {
                        code: "reply_in_progress",
                        message: "wait for message_complete (or send cancel) before the next message".into(),
                    }).await,
                    Some(Err(e)) => conn.refuse(e).await,
                },
            }
        }
        drop(stream);
        let truncated = cancelled || failed.is_some();
        let mut items = Vec::new();
        if !text.is_empty() || calls.is_empty() {
            items.push(StoredItem::Message {
                role: "assistant",
                text: text.clone(),
                truncated,
            });
        }
        if let Some(e) = &failed {
            tracing::warn!(error = %e, "chat reply failed");
            conn.refuse(ProtocolError {
                code: "llm_unavailable",
                message: "No LLM provider could answer; try again shortly.".into(),
            })
            .await;
        }
        if truncated || calls.is_empty() {
            s.sink.record(&s.session_id, items);
            history.push(ChatMessage::Assistant {
                content: text.clone(),
                tool_calls: Vec::new(),
            });
            let reason = if cancelled {
                "cancelled"
            } else if failed.is_some() {
                "error"
            } else {
                "stop"
            };
            conn.send(protocol::message_complete(&text, reason, &metadata))
                .await;
            return;
        }
        // Tool round: the client runs the calls and sends each result back.
        items.extend(calls.iter().map(|c| StoredItem::ToolCall {
            call_id: c.id.clone(),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        }));
        s.sink.record(&s.session_id, items);
        for c in &calls {
            conn.send(protocol::tool_call(&c.id, &c.name, &c.arguments))
                .await;
        }
        history.push(ChatMessage::Assistant {
            content: text,
            tool_calls: calls.clone(),
        });
        let mut waiting: Vec<String> = calls.iter().map(|c| c.id.clone()).collect();
        while !waiting.is_empty() {
            match conn.next().await {
                None => return,
                Some(Ok(ClientMessage::ToolResult { call_id, content }))
                    if waiting.contains(&call_id) =>
                {
                    waiting.retain(|w| *w != call_id);
                    s.sink.record(
                        &s.session_id,
                        vec![StoredItem::ToolResult {
                            call_id: call_id.clone(),
                            output: content.clone(),
                        }],
                    );
                    history.push(ChatMessage::Tool { call_id, content });
                }
                Some(Ok(ClientMessage::Cancel)) => {
                    // Every call needs a result before the model sees the history again.
                    for call_id in waiting {
                        history.push(ChatMessage::Tool {
                            call_id,
                            content: "cancelled by the user".into(),
                        });
                    }
                    conn.send(protocol::message_complete("", "cancelled", &metadata))
                        .await;
                    return;
                }
                Some(Ok(_)) => {
                    conn.refuse(ProtocolError {
                        code: "tool_result_expected",
                        message: format!("waiting for the results of: {}", waiting.join(", ")),
                    })
                    .await
                }
                Some(Err(e)) => conn.refuse(e).await,
            }
        }
    }
}

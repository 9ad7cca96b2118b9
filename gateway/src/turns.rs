//! The orchestrator's last stage in the gateway: storing each finished turn (session,
//! messages, tool calls) through the write queue, then, off the hot path, what the turn
//! taught about the user: facts into memory (embedded for retrieval) and their name into
//! their profile.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;
use switchboard_pipeline::call::{StoredItem, TurnSink};
use switchboard_pipeline::context::memory::{SharedEmbedder, extract_facts, extract_name};

use switchboard_pipeline::llm::{LlmProvider, ToolCall};

use crate::store::writer::{Write, Writer};
use crate::store::{Memory, MessageRecord, SessionRecord, Store, ToolCallRecord, now_ms};

/// A new unique id: `prefix_` and 24 hex digits (time, a process-wide counter, and a random
/// per-process salt so that instances do not collide).
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let salt = *SALT.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (salt, n).hash(&mut h);
    format!(
        "{prefix}_{:012x}{:012x}",
        now_ms() as u64 & 0xffff_ffff_ffff,
        h.finish() & 0xffff_ffff_ffff
    )
}

/// A stable id for a memory, so the same fact said twice is stored once.
fn memory_id(user: &str, text: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (user, text.to_lowercase()).hash(&mut h);
    format!("mem_{:016x}", h.finish())
}

/// Which session a write belongs to.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub tenant: String,
    pub session_id: String,
    /// `chat`, `chat_ws`, `realtime`.
    pub channel: &'static str,
    pub user: Option<String>,
    pub persona: Option<String>,
}

/// A call's (or chat socket's) turns, stored as they finish; the session id is the call's
/// id. When it ends, the conversation is summarised for the user's memory.
#[derive(Debug)]
pub struct CallTurns {
    pub log: TurnLog,
    pub session: SessionInfo,
    /// The messages so far, for the summary.
    pub transcript: std::sync::Mutex<Vec<(&'static str, String)>>,
}

impl CallTurns {
    pub fn new(log: TurnLog, session: SessionInfo) -> Self {
        Self {
            log,
            session,
            transcript: Default::default(),
        }
    }
}

impl CallTurns {
    fn session(&self, call_id: &str) -> SessionInfo {
        SessionInfo {
            session_id: call_id.to_owned(),
            ..self.session.clone()
        }
    }
}

impl TurnSink for CallTurns {
    fn record(&self, call_id: &str, items: Vec<StoredItem>) {
        if let Ok(mut t) = self.transcript.lock() {
            t.extend(items.iter().filter_map(|i| match i {
                StoredItem::Message { role, text, .. } => Some((*role, text.clone())),
                _ => None,
            }));
        }
        self.log.record_items(&self.session(call_id), items);
    }

    fn ended(&self, call_id: &str, status: &'static str) {
        let session = self.session(call_id);
        self.log.set_status(&session, status);
        let transcript = self
            .transcript
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        self.log.summarize(&session, transcript);
    }
}

/// One finished chat turn.
#[derive(Debug, Clone)]
pub struct Turn {
    pub tenant: String,
    pub session_id: String,
    /// `chat`, `chat_ws`, `realtime`.
    pub channel: &'static str,
    pub user: Option<String>,
    pub persona: String,
    pub user_text: String,
    pub reply: String,
    /// The reply was cut short (the client went away, or barge-in): `reply` is what was
    /// delivered.
    pub truncated: bool,
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Clone)]
pub struct TurnLog {
    pub(crate) writer: Writer,
    /// Reads what summaries need (the session's messages and summary so far).
    pub(crate) store: Store,
    /// Sessions whose rolling summary is being written.
    pub(crate) rolling: Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
    pub(crate) embedder: SharedEmbedder,
    /// Writes conversation summaries (the same chain that answers).
    pub(crate) llm: Arc<dyn LlmProvider>,
}

impl std::fmt::Debug for TurnLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnLog").finish_non_exhaustive()
    }
}

impl TurnLog {
    pub fn new(
        writer: Writer,
        store: Store,
        embedder: SharedEmbedder,
        llm: Arc<dyn LlmProvider>,
    ) -> Self {
        Self {
            writer,
            store,
            rolling: Default::default(),
            embedder,
            llm,
        }
    }

    /// Record an administrative action (uploads, deletions, profile changes) in the audit log.
    pub fn audit(
        &self,
        tenant: &str,
        session_id: Option<&str>,
        kind: &str,
        detail: serde_json::Value,
    ) {
        self.writer.send(Write::Audit {
            tenant: tenant.to_owned(),
            id: new_id("audit"),
            session_id: session_id.map(str::to_owned),
            kind: kind.to_owned(),
            detail,
        });
    }

    /// Queue a chat turn's writes, then learn from it in the background.
    pub fn record(&self, turn: Turn) {
        let mut items = Vec::new();
        if !turn.user_text.is_empty() {
            items.push(StoredItem::Message {
                role: "user",
                text: turn.user_text,
                truncated: false,
            });
        }
        if !turn.reply.is_empty() || turn.tool_calls.is_empty() {
            items.push(StoredItem::Message {
                role: "assistant",
                text: turn.reply,
                truncated: turn.truncated,
            });
        }
        items.extend(turn.tool_calls.into_iter().map(|c| StoredItem::ToolCall {
            call_id: c.id,
            name: c.name,
            arguments: c.arguments,
        }));
        let session = SessionInfo {
            tenant: turn.tenant,
            session_id: turn.session_id,
            channel: turn.channel,
            user: turn.user,
            persona: Some(turn.persona),
        };
        self.record_items(&session, items);
    }

    /// Queue the writes for some finished items of a session (created if new).
    pub fn record_items(&self, s: &SessionInfo, items: Vec<StoredItem>) {
        let now = now_ms();
        self.set_status(s, "active");
        let mut messages = Vec::new();
        let mut said = Vec::new();
        for item in items {
            match item {
                StoredItem::Message {
                    role,
                    text,
                    truncated,
                } => {
                    if role == "user" {
                        said.push(text.clone());
                    }
                    messages.push(MessageRecord {
                        seq: 0,
                        id: new_id("msg"),
                        role: role.into(),
                        content: text,
                        truncated,
                        created_at: now,
                    });
                }
                StoredItem::ToolCall {
                    call_id,
                    name,
                    arguments,
                } => self.writer.send(Write::ToolCall {
                    tenant: s.tenant.clone(),
                    session_id: s.session_id.clone(),
                    call: ToolCallRecord {
                        id: call_id,
                        name,
                        arguments,
                        result: None,
                        created_at: now,
                    },
                }),
                StoredItem::ToolResult { call_id, output } => self.writer.send(Write::ToolCall {
                    tenant: s.tenant.clone(),
                    session_id: s.session_id.clone(),
                    call: ToolCallRecord {
                        id: call_id,
                        name: String::new(),
                        arguments: String::new(),
                        result: Some(output),
                        created_at: now,
                    },
                }),
            }
        }
        if !messages.is_empty() {
            self.writer.send(Write::Messages {
                tenant: s.tenant.clone(),
                session_id: s.session_id.clone(),
                messages,
            });
            self.roll_summary(s);
        }
        if let Some(user) = &s.user {
            for text in said {
                self.learn(s.tenant.clone(), user.clone(), s.session_id.clone(), text);
            }
        }
    }

    /// Create the session or update its status.
    pub fn set_status(&self, s: &SessionInfo, status: &str) {
        let now = now_ms();
        self.writer.send(Write::Session {
            tenant: s.tenant.clone(),
            session: SessionRecord {
                id: s.session_id.clone(),
                channel: s.channel.into(),
                status: status.into(),
                user_id: s.user.clone(),
                persona: s.persona.clone(),
                created_at: now,
                updated_at: now,
            },
        });
    }

    /// Facts into memory and a given name into the profile, off the hot path.
    fn learn(&self, tenant: String, user: String, session_id: String, text: String) {
        if let Some(name) = extract_name(&text) {
            let mut attributes = serde_json::Map::new();
            attributes.insert("name".into(), name.into());
            self.writer.send(Write::ProfileMerge {
                tenant: tenant.clone(),
                user: user.clone(),
                attributes,
            });
        }
        let facts = extract_facts(&text);
        if facts.is_empty() {
            return;
        }
        let (writer, embedder) = (self.writer.clone(), self.embedder.clone());
        tokio::spawn(async move {
            // Without the model (still loading), facts are kept unembedded: stored, never lost.
            let embeddings = match embedder.get() {
                Some(e) => e.embed(facts.clone()).await.unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "embedding memories failed; storing them unembedded");
                    Vec::new()
                }),
                None => Vec::new(),
            };
            for (i, fact) in facts.into_iter().enumerate() {
                writer.send(Write::Memory {
                    tenant: tenant.clone(),
                    user: user.clone(),
                    memory: Memory {
                        id: memory_id(&user, &fact),
                        kind: "fact".into(),
                        text: fact,
                        embedding: embeddings.get(i).cloned().unwrap_or_default(),
                        session_id: Some(session_id.clone()),
                        created_at: now_ms(),
                    },
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_memory_ids_stable() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id("msg")).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| i.starts_with("msg_") && i.len() == 28));
        assert_eq!(
            memory_id("u", "I am vegetarian"),
            memory_id("u", "i am Vegetarian")
        );
        assert_ne!(memory_id("u", "a"), memory_id("v", "a"));
    }
}

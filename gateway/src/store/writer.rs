//! The write queue: calls and chats hand their writes here and go on. One task applies them
//! in order; a write that fails is retried with exponential backoff (50 ms doubling to 5 s)
//! until it succeeds, so nothing accepted is dropped, and the failures and the queue depth
//! are visible in `/metrics`. On shutdown the queue is drained before the process exits.

use std::time::Duration;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::mpsc;

use super::{Memory, MessageRecord, Store, StoreError, ToolCallRecord, records::SessionRecord};

/// One durable write.
#[derive(Debug, Clone)]
pub enum Write {
    Session {
        tenant: String,
        session: SessionRecord,
    },
    Messages {
        tenant: String,
        session_id: String,
        messages: Vec<MessageRecord>,
    },
    ToolCall {
        tenant: String,
        session_id: String,
        call: ToolCallRecord,
    },
    Audit {
        tenant: String,
        id: String,
        session_id: Option<String>,
        kind: String,
        detail: serde_json::Value,
    },
    /// Added, or replaced when one with its id exists (a session's rolling summary).
    Memory {
        tenant: String,
        user: String,
        memory: Memory,
    },
    SessionSummary {
        tenant: String,
        session_id: String,
        summary: String,
        covers: usize,
    },
    /// Set some profile attributes, keeping the others.
    ProfileMerge {
        tenant: String,
        user: String,
        attributes: serde_json::Map<String, serde_json::Value>,
    },
}

impl Write {
    fn kind(&self) -> &'static str {
        match self {
            Self::Session { .. } => "session",
            Self::Messages { .. } => "messages",
            Self::ToolCall { .. } => "tool_call",
            Self::Audit { .. } => "audit",
            Self::Memory { .. } => "memory",
            Self::SessionSummary { .. } => "session_summary",
            Self::ProfileMerge { .. } => "profile",
        }
    }

    async fn apply(&self, store: &Store) -> Result<(), StoreError> {
        match self {
            Self::Session { tenant, session } => store.upsert_session(tenant, session).await,
            Self::Messages {
                tenant,
                session_id,
                messages,
            } => store.append_messages(tenant, session_id, messages).await,
            Self::ToolCall {
                tenant,
                session_id,
                call,
            } => store.add_tool_call(tenant, session_id, call).await,
            Self::Audit {
                tenant,
                id,
                session_id,
                kind,
                detail,
            } => {
                store
                    .add_audit(tenant, id, session_id.as_deref(), kind, detail)
                    .await
            }
            Self::Memory {
                tenant,
                user,
                memory,
            } => store.add_memory(tenant, user, memory).await,
            Self::SessionSummary {
                tenant,
                session_id,
                summary,
                covers,
            } => {
                store
                    .set_session_summary(tenant, session_id, summary, *covers)
                    .await
            }
            Self::ProfileMerge {
                tenant,
                user,
                attributes,
            } => store.merge_profile(tenant, user, attributes).await,
        }
    }
}

#[derive(Clone)]
pub struct WriterMetrics {
    /// Writes applied, by kind.
    pub writes_total: IntCounterVec,
    /// Failed attempts (each retried), by kind.
    pub write_failures_total: IntCounterVec,
    /// Writes waiting, including one being retried.
    pub pending: IntGauge,
}

impl WriterMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            writes_total: IntCounterVec::new(
                Opts::new(
                    "switchboard_store_writes_total",
                    "Durable writes applied, by kind",
                ),
                &["kind"],
            )?,
            write_failures_total: IntCounterVec::new(
                Opts::new(
                    "switchboard_store_write_failures_total",
                    "Failed write attempts (retried until they succeed), by kind",
                ),
                &["kind"],
            )?,
            pending: IntGauge::new(
                "switchboard_store_pending_writes",
                "Durable writes queued or being retried",
            )?,
        };
        registry.register(Box::new(m.writes_total.clone()))?;
        registry.register(Box::new(m.write_failures_total.clone()))?;
        registry.register(Box::new(m.pending.clone()))?;
        Ok(m)
    }
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Write>,
    metrics: WriterMetrics,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Writer {
    /// Start the writer task; it ends when every `Writer` clone is dropped and the queue is
    /// empty. Await the handle to drain on shutdown.
    pub fn start(store: Store, metrics: WriterMetrics) -> (Self, tokio::task::JoinHandle<()>) {
        // Unbounded on purpose: a write is a few hundred bytes and refusing one would lose
        // it; the depth is in `switchboard_store_pending_writes`.
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store, rx, metrics.clone()));
        (Self { tx, metrics }, task)
    }

    /// Wait until every queued write is applied, or `timeout` passes. Returns whether the
    /// queue is empty.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.metrics.pending.get() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    pub fn send(&self, write: Write) {
        self.metrics.pending.inc();
        if self.tx.send(write).is_err() {
            self.metrics.pending.dec();
            tracing::error!("the store writer has stopped; a write was lost");
        }
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Write>, metrics: WriterMetrics) {
    while let Some(write) = rx.recv().await {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match write.apply(&store).await {
                Ok(()) => {
                    metrics
                        .writes_total
                        .with_label_values(&[write.kind()])
                        .inc();
                    break;
                }
                Err(e) => {
                    metrics
                        .write_failures_total
                        .with_label_values(&[write.kind()])
                        .inc();
                    tracing::warn!(kind = write.kind(), error = %e, retry_in_ms = backoff.as_millis() as u64, "durable write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        metrics.pending.dec();
    }
}

//! The summary of a conversation's older turns: the prompt's lowest-priority slot. The
//! gateway keeps a rolling summary per session (written off the hot path as the session
//! grows); the orchestrator reads it next to the context engines, under its own deadline.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::EngineError;

/// How long the orchestrator waits for a session's summary before going on without it.
pub const SUMMARY_DEADLINE: Duration = Duration::from_millis(200);

/// A summary of the first `covers` messages of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OlderTurns {
    pub text: String,
    pub covers: usize,
}

/// Where session summaries live (the database).
pub trait SummarySource: Send + Sync {
    fn older_turns<'a>(
        &'a self,
        tenant: &'a str,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<OlderTurns>, EngineError>>;
}

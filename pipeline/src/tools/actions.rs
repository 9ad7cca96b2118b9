//! Pending actions: a `write` or `dangerous` tool call waiting for the caller's approval.
//! The store is a trait so the gateway keeps them in its database (they outlive a process
//! and are shared by instances); [`MemoryActions`] keeps them in process memory.
//!
//! Status changes are compare-and-set ([`ActionStore::transition`]): of two approvals racing
//! (a spoken "yes" and an API call), exactly one runs the tool.

use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;

use super::SideEffect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// Waiting for approval.
    Pending,
    /// Approved; the tool is running.
    Approved,
    /// Ran and answered.
    Executed,
    /// Ran and failed (the result says how).
    Failed,
    /// The caller said no.
    Rejected,
    /// Not approved within its time to live: cancelled.
    Expired,
    /// The caller moved on without answering: cancelled.
    Superseded,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Executed => "executed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "executed" => Self::Executed,
            "failed" => Self::Failed,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            "superseded" => Self::Superseded,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingAction {
    pub id: String,
    #[serde(skip)]
    pub tenant: String,
    pub session_id: String,
    pub user_id: Option<String>,
    pub persona: String,
    pub tool: String,
    /// The model's tool call id, so the result can answer that call.
    pub call_id: String,
    /// The arguments as JSON text, as the model wrote them.
    #[serde(skip)]
    pub arguments: String,
    pub effect: SideEffect,
    /// What the caller was asked ("cancel order 42").
    pub prompt: String,
    pub status: ActionStatus,
    /// The tool's answer once it ran (or why it did not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The outcome has been shown to the model (so the next turn need not mention it).
    pub reported: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait ActionStore: Send + Sync {
    async fn create(&self, action: &PendingAction) -> Result<(), String>;
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<PendingAction>, String>;
    /// The session's newest action whose outcome the model has not seen yet: still
    /// pending, or resolved elsewhere (the actions API, expiry) since the last turn.
    async fn latest_unreported(
        &self,
        tenant: &str,
        session: &str,
    ) -> Result<Option<PendingAction>, String>;
    /// The model has been told how `id` ended.
    async fn mark_reported(&self, tenant: &str, id: &str) -> Result<(), String>;
    /// Move `id` from `from` to `to` (and set the result) only if it is still `from`:
    /// `true` when this call made the change.
    async fn transition(
        &self,
        tenant: &str,
        id: &str,
        from: ActionStatus,
        to: ActionStatus,
        result: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, String>;
    /// Pending actions whose time to live ended before `now_ms`, every tenant.
    async fn due_for_expiry(&self, now_ms: i64) -> Result<Vec<PendingAction>, String>;
}

/// Pending actions in process memory (tests, benches, a gateway without a database).
#[derive(Debug, Default)]
pub struct MemoryActions {
    rows: Mutex<Vec<PendingAction>>,
}

impl MemoryActions {
    fn rows(&self) -> std::sync::MutexGuard<'_, Vec<PendingAction>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ActionStore for MemoryActions {
    async fn create(&self, action: &PendingAction) -> Result<(), String> {
        self.rows().push(action.clone());
        Ok(())
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Option<PendingAction>, String> {
        Ok(self
            .rows()
            .iter()
            .find(|a| a.tenant == tenant && a.id == id)
            .cloned())
    }

    async fn latest_unreported(
        &self,
        tenant: &str,
        session: &str,
    ) -> Result<Option<PendingAction>, String> {
        Ok(self
            .rows()
            .iter()
            .rev()
            .find(|a| a.tenant == tenant && a.session_id == session && !a.reported)
            .cloned())
    }

    async fn mark_reported(&self, tenant: &str, id: &str) -> Result<(), String> {
        for a in self
            .rows()
            .iter_mut()
            .filter(|a| a.tenant == tenant && a.id == id)
        {
            a.reported = true;
        }
        Ok(())
    }

    async fn transition(
        &self,
        tenant: &str,
        id: &str,
        from: ActionStatus,
        to: ActionStatus,
        result: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, String> {
        let mut rows = self.rows();
        let Some(a) = rows
            .iter_mut()
            .find(|a| a.tenant == tenant && a.id == id && a.status == from)
        else {
            return Ok(false);
        };
        a.status = to;
        if let Some(r) = result {
            a.result = Some(r.to_owned());
        }
        a.updated_at = now_ms;
        Ok(true)
    }

    async fn due_for_expiry(&self, now_ms: i64) -> Result<Vec<PendingAction>, String> {
        Ok(self
            .rows()
            .iter()
            .filter(|a| a.status == ActionStatus::Pending && a.expires_at <= now_ms)
            .cloned()
            .collect())
    }
}

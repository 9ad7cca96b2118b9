//! The webhook inbox: messages are stored before they are answered, and their answers
//! before they are delivered, so neither a crash nor a failing callback loses one.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// One accepted message and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    pub channel: String,
    pub id: String,
    pub conversation: String,
    pub user: Option<String>,
    pub text: String,
    pub reply_to: Option<String>,
    /// `pending`, `replied`, `delivered`, `failed`.
    pub status: String,
    pub reply: Option<String>,
    pub attempts: i64,
}

impl InboxMessage {
    /// A message a channel delivered, not yet answered.
    pub fn received(channel: &str, m: switchboard_channels::im::ImMessage) -> Self {
        Self {
            channel: channel.to_owned(),
            id: m.id,
            conversation: m.conversation,
            user: m.user,
            text: m.text,
            reply_to: m.reply_to,
            status: "pending".into(),
            reply: None,
            attempts: 0,
        }
    }

    /// A chat channel's reply address (`reply_to` as JSON: Slack's channel and thread,
    /// Telegram's chat and message).
    pub fn address(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(self.reply_to.as_deref().unwrap_or("{}"))
            .map_err(|e| format!("bad {} address: {e}", self.channel))
    }
}

impl Store {
    /// Store a new message; `false` when one with this id was already accepted (a retry or
    /// duplicate from the sender: it is not answered twice).
    pub async fn inbox_accept(&self, tenant: &str, m: &InboxMessage) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO inbox (tenant_id, channel, id, conversation, user_id, text, reply_to,
                 status, reply, attempts, next_attempt_at, last_error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', NULL, 0, $8, NULL, $8, $8)
             ON CONFLICT (tenant_id, channel, id) DO NOTHING",
        )
        .bind(tenant)
        .bind(&m.channel)
        .bind(&m.id)
        .bind(&m.conversation)
        .bind(m.user.as_deref())
        .bind(&m.text)
        .bind(m.reply_to.as_deref())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Store an outgoing message whose content is ready (a hand-off): the worker delivers it
    /// to `reply_to` with the usual retries.
    pub async fn inbox_enqueue_reply(
        &self,
        tenant: &str,
        m: &InboxMessage,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO inbox (tenant_id, channel, id, conversation, user_id, text, reply_to,
                 status, reply, attempts, next_attempt_at, last_error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'replied', $8, 0, $9, NULL, $9, $9)",
        )
        .bind(tenant)
        .bind(&m.channel)
        .bind(&m.id)
        .bind(&m.conversation)
        .bind(m.user.as_deref())
        .bind(&m.text)
        .bind(m.reply_to.as_deref())
        .bind(m.reply.as_deref())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Messages due for work (pending, or replied with a callback due), oldest first.
    pub async fn inbox_due(&self, limit: i64) -> Result<Vec<(String, InboxMessage)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, channel, id, conversation, user_id, text, reply_to, status, reply, attempts
             FROM inbox WHERE status IN ('pending', 'replied') AND next_attempt_at <= $1
                 AND lease_until <= $1
             ORDER BY created_at LIMIT $2",
        )
        .bind(now_ms())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("tenant_id")?,
                    InboxMessage {
                        channel: r.try_get("channel")?,
                        id: r.try_get("id")?,
                        conversation: r.try_get("conversation")?,
                        user: r.try_get("user_id")?,
                        text: r.try_get("text")?,
                        reply_to: r.try_get("reply_to")?,
                        status: r.try_get("status")?,
                        reply: r.try_get("reply")?,
                        attempts: r.try_get("attempts")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Take a message to work on until `until` (Unix ms), unless another worker holds it:
    /// `true` when this worker has it now.
    pub async fn inbox_claim(
        &self,
        tenant: &str,
        m: &InboxMessage,
        owner: &str,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE inbox SET lease_owner = $1, lease_until = $2
             WHERE tenant_id = $3 AND channel = $4 AND id = $5 AND lease_until <= $6
                 AND status IN ('pending', 'replied')",
        )
        .bind(owner)
        .bind(until)
        .bind(tenant)
        .bind(&m.channel)
        .bind(&m.id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extend (`until` later) or give back (`until` = 0) a lease this worker holds.
    pub async fn inbox_lease(
        &self,
        tenant: &str,
        m: &InboxMessage,
        owner: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET lease_until = $1
             WHERE tenant_id = $2 AND channel = $3 AND id = $4 AND lease_owner = $5",
        )
        .bind(until)
        .bind(tenant)
        .bind(&m.channel)
        .bind(&m.id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Move a message on: its new status, reply, attempt count, next attempt and error.
    pub async fn inbox_update(
        &self,
        tenant: &str,
        m: &InboxMessage,
        next_attempt_at: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET status = $4, reply = $5, attempts = $6, next_attempt_at = $7,
                 last_error = $8, updated_at = $9
             WHERE tenant_id = $1 AND channel = $2 AND id = $3",
        )
        .bind(tenant)
        .bind(&m.channel)
        .bind(&m.id)
        .bind(&m.status)
        .bind(m.reply.as_deref())
        .bind(m.attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One message's state, for the sender asking again.
    pub async fn inbox_get(
        &self,
        tenant: &str,
        channel: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT status FROM inbox WHERE tenant_id = $1 AND channel = $2 AND id = $3",
        )
        .bind(tenant)
        .bind(channel)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("status")).transpose()?)
    }
}

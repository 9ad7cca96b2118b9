//! Sessions' rolling summaries (see `crate::summary`): the summary text and how many of the
//! session's first messages it covers.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// The session's rolling summary and how many of its first messages it covers.
    pub async fn session_summary(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(String, usize)>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT summary, summarized_messages FROM sessions WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let summary: Option<String> = row.try_get("summary")?;
        let covers: i64 = row.try_get("summarized_messages")?;
        Ok(summary.map(|s| (s, covers.max(0) as usize)))
    }

    /// How many messages the session has stored.
    pub async fn message_count(&self, tenant: &str, id: &str) -> Result<usize, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM messages WHERE tenant_id = $1 AND session_id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let n: i64 = row.try_get("n")?;
        Ok(n.max(0) as usize)
    }

    /// Replace the session's rolling summary, unless a newer one (covering more) is stored.
    pub async fn set_session_summary(
        &self,
        tenant: &str,
        id: &str,
        summary: &str,
        covers: usize,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "UPDATE sessions SET summary = $3, summarized_messages = $4
             WHERE tenant_id = $1 AND id = $2 AND summarized_messages < $4",
        )
        .bind(tenant)
        .bind(id)
        .bind(summary)
        .bind(covers as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

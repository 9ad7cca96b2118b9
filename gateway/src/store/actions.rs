//! Pending actions (migration 0003) and the audit log read back. The tool engine's
//! [`ActionStore`] lives here so approvals survive a restart and every instance sees them;
//! status changes are one conditional `UPDATE`, so concurrent approvals cannot both win.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_pipeline::tools::{ActionStatus, ActionStore, PendingAction, SideEffect};

use super::{Store, StoreError};

const COLUMNS: &str = "tenant_id, id, session_id, user_id, persona, tool, call_id, arguments, effect, prompt, status, result, reported, created_at, expires_at, updated_at";

fn action(r: &AnyRow) -> Result<PendingAction, StoreError> {
    let status: String = r.try_get("status")?;
    let effect: String = r.try_get("effect")?;
    Ok(PendingAction {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant_id")?,
        session_id: r.try_get("session_id")?,
        user_id: r.try_get("user_id")?,
        persona: r.try_get("persona")?,
        tool: r.try_get("tool")?,
        call_id: r.try_get("call_id")?,
        arguments: r.try_get("arguments")?,
        effect: match effect.as_str() {
            "read" => SideEffect::Read,
            "write" => SideEffect::Write,
            _ => SideEffect::Dangerous,
        },
        prompt: r.try_get("prompt")?,
        status: ActionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("action status {status:?}")))?,
        result: r.try_get("result")?,
        reported: r.try_get::<i64, _>("reported")? != 0,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// A session's actions (or the tenant's, newest first), optionally of one status.
    pub async fn list_actions(
        &self,
        tenant: &str,
        session: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PendingAction>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pending_actions WHERE tenant_id = $1
             AND (CAST($2 AS TEXT) IS NULL OR session_id = $2) AND (CAST($3 AS TEXT) IS NULL OR status = $3)
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(session)
        .bind(status)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(action).collect()
    }

    /// One action by a query whose `$1` is the tenant and `$2` another key.
    async fn one_action(
        &self,
        sql: &str,
        tenant: &str,
        key: &str,
    ) -> Result<Option<PendingAction>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(sql)
            .bind(tenant)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(action).transpose()
    }
}

#[async_trait]
impl ActionStore for Store {
    async fn create(&self, a: &PendingAction) -> Result<(), String> {
        let mut tx = self.tenant_tx(&a.tenant).await.map_err(|e| e.to_string())?;
        sqlx::query(&format!(
            "INSERT INTO pending_actions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&a.tenant)
        .bind(&a.id)
        .bind(&a.session_id)
        .bind(a.user_id.as_deref())
        .bind(&a.persona)
        .bind(&a.tool)
        .bind(&a.call_id)
        .bind(&a.arguments)
        .bind(a.effect.as_str())
        .bind(&a.prompt)
        .bind(a.status.as_str())
        .bind(a.result.as_deref())
        .bind(i64::from(a.reported))
        .bind(a.created_at)
        .bind(a.expires_at)
        .bind(a.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Option<PendingAction>, String> {
        self.one_action(
            &format!("SELECT {COLUMNS} FROM pending_actions WHERE tenant_id = $1 AND id = $2"),
            tenant,
            id,
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn latest_unreported(
        &self,
        tenant: &str,
        session: &str,
    ) -> Result<Option<PendingAction>, String> {
        self.one_action(
            &format!(
                "SELECT {COLUMNS} FROM pending_actions WHERE tenant_id = $1 AND session_id = $2
                 AND reported = 0 ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            tenant,
            session,
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn mark_reported(&self, tenant: &str, id: &str) -> Result<(), String> {
        let mut tx = self.tenant_tx(tenant).await.map_err(|e| e.to_string())?;
        sqlx::query("UPDATE pending_actions SET reported = 1 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
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
        let mut tx = self.tenant_tx(tenant).await.map_err(|e| e.to_string())?;
        let done = sqlx::query(
            "UPDATE pending_actions SET status = $1, result = COALESCE($2, result), updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(result)
        .bind(now_ms)
        .bind(tenant)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(done.rows_affected() == 1)
    }

    async fn due_for_expiry(&self, now_ms: i64) -> Result<Vec<PendingAction>, String> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pending_actions WHERE status = 'pending' AND expires_at <= $1 LIMIT 500"
        ))
        .bind(now_ms)
        .fetch_all(self.pool())
        .await
        .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|r| action(r).map_err(|e| e.to_string()))
            .collect()
    }
}

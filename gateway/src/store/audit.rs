//! The audit log: administrative actions (uploads, deletions, profile changes, keys, tool
//! runs and approvals) written through the queue and read back newest first.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: String,
    pub session_id: Option<String>,
    pub kind: String,
    pub detail: serde_json::Value,
    pub created_at: i64,
}

impl Store {
    pub async fn add_audit(
        &self,
        tenant: &str,
        id: &str,
        session_id: Option<&str>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, id, session_id, kind, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, id) DO NOTHING",
        )
        .bind(tenant)
        .bind(id)
        .bind(session_id)
        .bind(kind)
        .bind(detail.to_string())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit entries, newest first, optionally of one session or kind prefix (`tool.`).
    pub async fn list_audit(
        &self,
        tenant: &str,
        session: Option<&str>,
        kind_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let like = kind_prefix.map(|k| format!("{}%", k.replace(['%', '_'], "")));
        let rows = sqlx::query(
            "SELECT id, session_id, kind, detail, created_at FROM audit_events WHERE tenant_id = $1
             AND (CAST($2 AS TEXT) IS NULL OR session_id = $2) AND (CAST($3 AS TEXT) IS NULL OR kind LIKE $3)
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(session)
        .bind(like)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    session_id: r.try_get("session_id")?,
                    kind: r.try_get("kind")?,
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

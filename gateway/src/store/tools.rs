//! OpenAPI imports awaiting review and the tools approved from them (migration 0004).

use serde::Serialize;
use sqlx::Row;
use switchboard_pipeline::tools::ToolDef;
use switchboard_pipeline::tools::openapi::ToolProposal;

use super::{Store, StoreError, now_ms};

/// An import as stored: its proposals and whether they were approved.
#[derive(Debug, Clone, Serialize)]
pub struct ToolImport {
    pub id: String,
    pub persona: String,
    pub title: String,
    pub status: String,
    pub proposals: serde_json::Value,
    pub created_at: i64,
}

impl ToolImport {
    /// The proposed tools, by name.
    pub fn tools(&self) -> Result<Vec<ToolDef>, StoreError> {
        self.proposals
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                serde_json::from_value(p["tool"].clone())
                    .map_err(|e| StoreError::Corrupt(format!("import {}: {e}", self.id)))
            })
            .collect()
    }
}

impl Store {
    pub async fn create_tool_import(
        &self,
        tenant: &str,
        id: &str,
        persona: &str,
        title: &str,
        proposals: &[ToolProposal],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let json =
            serde_json::to_string(proposals).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO tool_imports (tenant_id, id, persona, title, proposals, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'proposed', $6, $6)",
        )
        .bind(tenant)
        .bind(id)
        .bind(persona)
        .bind(title)
        .bind(json)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn tool_import(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ToolImport>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT id, persona, title, status, proposals, created_at FROM tool_imports WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            let proposals: String = r.try_get("proposals")?;
            Ok(ToolImport {
                id: r.try_get("id")?,
                persona: r.try_get("persona")?,
                title: r.try_get("title")?,
                status: r.try_get("status")?,
                proposals: serde_json::from_str(&proposals)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Record the approved tools of an import (replacing same-named ones of the persona) and
    /// mark the import approved, in one transaction.
    pub async fn install_tools(
        &self,
        tenant: &str,
        import_id: &str,
        persona: &str,
        tools: &[ToolDef],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.tenant_tx(tenant).await?;
        for t in tools {
            let definition =
                serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO installed_tools (tenant_id, persona, name, definition, import_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, persona, name) DO UPDATE SET definition = $4, import_id = $5, created_at = $6",
            )
            .bind(tenant)
            .bind(persona)
            .bind(&t.name)
            .bind(definition)
            .bind(import_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE tool_imports SET status = 'approved', updated_at = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(now)
            .bind(tenant)
            .bind(import_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every approved tool of every tenant: `(tenant, persona, tool)`.
    pub async fn all_installed_tools(&self) -> Result<Vec<(String, String, ToolDef)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, persona, definition FROM installed_tools ORDER BY tenant_id, persona, name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let definition: String = r.try_get("definition")?;
                let tool: ToolDef = serde_json::from_str(&definition)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((r.try_get("tenant_id")?, r.try_get("persona")?, tool))
            })
            .collect()
    }
}

//! Tenants and their API keys (migration 0006). Keys are stored as the SHA-256 of their
//! secret; see `auth/keys.rs` for the format. Adding, listing and revoking one tenant's keys
//! run in its transaction (`tenant_tx`: row-level security on PostgreSQL); finding a key by
//! id to authenticate a request, and whether any key is usable, serve every tenant and run
//! as the owner.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// A stored key, without anything that would let one use it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    #[serde(skip)]
    pub secret_sha256: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl StoredKey {
    /// Neither revoked nor expired at `now` (Unix ms).
    pub fn usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

const KEY_COLUMNS: &str =
    "tenant_id, id, name, secret_sha256, scopes, created_at, expires_at, revoked_at";

fn key_of(r: &sqlx::any::AnyRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        tenant: r.try_get("tenant_id")?,
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        secret_sha256: r.try_get("secret_sha256")?,
        scopes: r.try_get("scopes")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// Create a tenant; `false` when one with that id exists.
    pub async fn create_tenant(&self, id: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn tenant_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT id FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .is_some())
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Tenant {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Add a key, in its tenant's transaction (row-level security: it can only be that
    /// tenant's).
    pub async fn insert_key(&self, k: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(&k.tenant).await?;
        sqlx::query(&format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&k.tenant)
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.secret_sha256)
        .bind(&k.scopes)
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A key by id, whatever its tenant (authentication looks keys up this way).
    pub async fn key_by_id(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(key_of)
            .transpose()
    }

    /// A tenant's keys, newest first.
    pub async fn list_keys(&self, tenant: &str) -> Result<Vec<StoredKey>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(key_of).collect()
    }

    /// Revoke one of `tenant`'s keys; `false` when it has no such key (or it was revoked).
    pub async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether any key can still be used (then anonymous requests are refused).
    pub async fn has_usable_keys(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT id FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) LIMIT 1",
        )
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?
        .is_some())
    }
}

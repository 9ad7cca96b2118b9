//! Durable state through sqlx's `Any` driver: SQLite in the data directory by default,
//! PostgreSQL when `SWITCHBOARD_DATABASE_URL` names one. The same migrations run on both at
//! start-up (`migrations/`), and every query is written once in portable SQL with `$N`
//! parameters (both drivers accept them).
//!
//! Writes from calls and chats go through [`writer::Writer`]: queued, retried with backoff
//! until they succeed, counted in metrics while they fail, so a turn is stored even when the
//! caller has hung up. Reads (the sessions, profile and memory lookups) use the pool directly.

pub mod actions;
pub mod audit;
pub mod inbox;
pub mod keys;
mod migrate;
mod records;
mod sources;
mod summaries;
pub mod tools;
pub mod writer;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

pub use records::{Document, Memory, MessageRecord, Profile, SessionRecord, ToolCallRecord};

/// The tenant every row belongs to in embedded (single-tenant) mode.
pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which database a URL names, for logs and metrics.
pub fn backend_of(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A connection pool with the schema migrated.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: &'static str,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connect (creating the database if it does not exist), migrate, and make sure the
    /// default tenant exists.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = backend_of(url);
        if backend == "postgres" {
            migrate::create_postgres_database_if_missing(url).await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == "sqlite" { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        if backend == "sqlite" {
            // Readers do not block the writer; a busy database is waited for, not failed.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        migrate::run(&pool).await?;
        let store = Self { pool, backend };
        store.ensure_tenant(DEFAULT_TENANT).await?;
        Ok(store)
    }

    /// The SQLite URL for a data directory.
    pub fn sqlite_url(data_dir: &std::path::Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("switchboard.db").display()
        )
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn ensure_tenant(&self, id: &str) -> Result<(), StoreError> {
        let exists = sqlx::query("SELECT id FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if !exists {
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(id)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// A transaction for one tenant's request. On PostgreSQL it runs as the role
    /// `switchboard_tenant` with `switchboard.tenant` set, so row-level security (migration
    /// 0007) admits only that tenant's rows, whatever the query says.
    pub(crate) async fn tenant_tx(
        &self,
        tenant: &str,
    ) -> Result<sqlx::Transaction<'_, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == "postgres" {
            sqlx::query("SET LOCAL ROLE switchboard_tenant")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT set_config('switchboard.tenant', $1, true)")
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| {
                r.try_get::<i64, _>(0)
                    .or_else(|_| r.try_get::<i32, _>(0).map(i64::from))
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row-level security on a real PostgreSQL server (the machine's, as in CI): inside a
    /// tenant's transaction even a query without a tenant condition sees only its rows, and
    /// cannot write rows of another tenant.
    #[tokio::test]
    async fn postgres_row_level_security_is_a_second_wall() {
        let name = format!("switchboard_rls_{}_{}", std::process::id(), now_ms());
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let store = Store::open(&url)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        for (tenant, id) in [("acme", "s-a"), ("globex", "s-b")] {
            let s = SessionRecord {
                id: id.into(),
                channel: "chat".into(),
                status: "active".into(),
                user_id: None,
                persona: None,
                created_at: 1,
                updated_at: 1,
            };
            store.upsert_session(tenant, &s).await.unwrap();
        }
        let mut tx = store.tenant_tx("acme").await.unwrap();
        let ids: Vec<String> = sqlx::query("SELECT id FROM sessions ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("id").unwrap())
            .collect();
        assert_eq!(ids, ["s-a"], "another tenant's row is visible");
        let deleted = sqlx::query("DELETE FROM sessions")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(deleted, 1);
        let forged = sqlx::query(
            "INSERT INTO sessions (tenant_id, id, channel, status, created_at, updated_at) VALUES ('globex', 'x', 'chat', 'active', 1, 1)",
        )
        .execute(&mut *tx)
        .await;
        assert!(forged.is_err(), "wrote a row for another tenant");
        drop(tx);
        // Outside a tenant's transaction (the gateway's own work) every row is there: the
        // transaction above was rolled back.
        assert_eq!(store.list_sessions("globex", 10).await.unwrap().len(), 1);
        assert!(store.get_session("acme", "s-a").await.unwrap().is_some());

        // The write queue's writes run as the tenant's role too: with the role's right to
        // add audit rows taken away, the owner still could, but the write is refused.
        sqlx::query("REVOKE INSERT ON audit_events FROM switchboard_tenant")
            .execute(store.pool())
            .await
            .unwrap();
        let detail = serde_json::json!({});
        let refused = store.add_audit("acme", "a-1", None, "test", &detail).await;
        assert!(refused.is_err(), "the audit write ran as the owner");
        sqlx::query("GRANT INSERT ON audit_events TO switchboard_tenant")
            .execute(store.pool())
            .await
            .unwrap();
        store
            .add_audit("acme", "a-1", None, "test", &detail)
            .await
            .unwrap();
        // So do an operator's writes of a tenant's API keys.
        let key = keys::StoredKey {
            id: "k-1".into(),
            tenant: "acme".into(),
            name: "test".into(),
            secret_sha256: "0".repeat(64),
            scopes: "realtime".into(),
            created_at: 1,
            expires_at: None,
            revoked_at: None,
        };
        sqlx::query("REVOKE INSERT, UPDATE ON api_keys FROM switchboard_tenant")
            .execute(store.pool())
            .await
            .unwrap();
        let refused = store.insert_key(&key).await;
        assert!(refused.is_err(), "the key write ran as the owner");
        sqlx::query("GRANT INSERT, UPDATE ON api_keys TO switchboard_tenant")
            .execute(store.pool())
            .await
            .unwrap();
        store.insert_key(&key).await.unwrap();
        assert!(!store.revoke_key("globex", "k-1").await.unwrap());
        assert_eq!(store.list_keys("globex").await.unwrap(), []);
        assert!(store.revoke_key("acme", "k-1").await.unwrap());
        drop(store);
        let admin = AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

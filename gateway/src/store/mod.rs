//! Durable state through sqlx's `Any` driver: SQLite in the data directory by default,
//! PostgreSQL when `SWITCHBOARD_DATABASE_URL` names one. The same migrations run on both at
//! start-up (`migrations/`), and every query is written once in portable SQL with `$N`
//! parameters (both drivers accept them).
//!
//! Writes from calls and chats go through [`writer::Writer`]: queued, retried with backoff
//! until they succeed, counted in metrics while they fail, so a turn is stored even when the
//! caller has hung up. Reads (the sessions, profile and memory lookups) use the pool directly.

pub mod actions;
pub mod inbox;
pub mod keys;
mod migrate;
mod records;
mod sources;
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

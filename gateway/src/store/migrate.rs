//! Schema migrations: numbered SQL files compiled into the binary, applied in order, each in
//! its own transaction, recorded in `schema_migrations`. On PostgreSQL an advisory lock makes
//! instances that start together take turns.

use sqlx::{Acquire, AnyPool, Row};

use super::{StoreError, now_ms};

/// Every migration, in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (2, "inbox", include_str!("../../migrations/0002_inbox.sql")),
    (
        3,
        "actions",
        include_str!("../../migrations/0003_actions.sql"),
    ),
    (4, "tools", include_str!("../../migrations/0004_tools.sql")),
    (
        5,
        "inbox_leases",
        include_str!("../../migrations/0005_inbox_leases.sql"),
    ),
    (
        6,
        "api_keys",
        include_str!("../../migrations/0006_api_keys.sql"),
    ),
    (
        7,
        "row_level_security",
        include_str!("../../migrations/0007_row_level_security.postgres.sql"),
    ),
    (
        8,
        "session_summaries",
        include_str!("../../migrations/0008_session_summaries.sql"),
    ),
];

/// Migrations that only mean something on PostgreSQL (row-level security); SQLite records
/// them as applied without running them, so both keep one version sequence.
const POSTGRES_ONLY: &[i64] = &[7];

/// Statements of a migration file: split at `;` ending a line, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

pub async fn run(pool: &AnyPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let postgres = conn.backend_name() == "PostgreSQL";
    if postgres {
        sqlx::query("SELECT pg_advisory_lock(7260142)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(&mut conn, postgres).await;
    if postgres {
        sqlx::query("SELECT pg_advisory_unlock(7260142)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    postgres: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut **conn)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut **conn)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    if let Some(newest) = applied.iter().max()
        && *newest > MIGRATIONS.last().map_or(0, |m| m.0)
    {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {newest}, newer than this build knows; upgrade switchboard"
        )));
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut tx = conn.begin().await?;
        if postgres || !POSTGRES_ONLY.contains(version) {
            for statement in statements(sql) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(*name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "database migrated");
    }
    Ok(())
}

/// Create the database a PostgreSQL URL names when it does not exist yet, by connecting to
/// the server's `postgres` database.
pub async fn create_postgres_database_if_missing(url: &str) -> Result<(), StoreError> {
    let (base, rest) = url.rsplit_once('/').unwrap_or((url, ""));
    let (name, query) = rest.split_once('?').map_or((rest, ""), |(n, q)| (n, q));
    if name.is_empty() || name == "postgres" || base.ends_with('/') {
        return Ok(());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        // Unusual names are left to the operator to create.
        return Ok(());
    }
    let admin = if query.is_empty() {
        format!("{base}/postgres")
    } else {
        format!("{base}/postgres?{query}")
    };
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await?;
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&pool)
        .await?
        .is_some();
    if !exists {
        match sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await
        {
            Ok(_) => tracing::info!(database = name, "created PostgreSQL database"),
            // Another instance created it at the same moment.
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e.into()),
        }
    }
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_drops_comments() {
        let sql = "-- header\nCREATE TABLE a (\n  x TEXT -- note\n);\n\nCREATE INDEX i ON a (x);\n";
        assert_eq!(
            statements(sql),
            vec!["CREATE TABLE a (\n  x TEXT\n)", "CREATE INDEX i ON a (x)"]
        );
    }

    #[test]
    fn the_shipped_migrations_parse() {
        let mut total = 0;
        for (i, (version, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1, "versions are consecutive");
            let s = statements(sql);
            assert!(!s.is_empty(), "{s:?}");
            // Schema statements only (tables, indexes, added columns, and on PostgreSQL
            // roles, grants and policies): no data changes.
            let allowed: &[&str] = if POSTGRES_ONLY.contains(version) {
                &["CREATE POLICY", "ALTER TABLE", "GRANT", "DO $$"]
            } else {
                &["CREATE", "ALTER TABLE"]
            };
            assert!(
                s.iter().all(|st| allowed.iter().any(|a| st.starts_with(a))),
                "{s:?}"
            );
            total += s.len();
        }
        assert!(total >= 12);
    }
}

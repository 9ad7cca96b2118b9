//! The rows and the queries over them. Portable SQL only (`$N` parameters, `ON CONFLICT`
//! upserts, BIGINT times), so SQLite and PostgreSQL run the same text.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_models::embed::{from_bytes, to_bytes};

use super::{Store, StoreError, now_ms};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRecord {
    pub id: String,
    /// `realtime`, `chat`, `chat_ws`, ...
    pub channel: String,
    /// `active`, `completed`, `disconnected`.
    pub status: String,
    pub user_id: Option<String>,
    pub persona: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: SessionRecord,
    pub message_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRecord {
    pub seq: i64,
    pub id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// A reply cut short by barge-in: `content` is what the caller heard.
    pub truncated: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub result: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub user_id: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memory {
    pub id: String,
    /// `fact` or `summary`.
    pub kind: String,
    pub text: String,
    #[serde(skip)]
    pub embedding: Vec<f32>,
    pub session_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub bytes: i64,
    #[serde(skip)]
    pub text: String,
    pub created_at: i64,
}

fn session(r: &AnyRow) -> Result<SessionRecord, sqlx::Error> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        status: r.try_get("status")?,
        user_id: r.try_get("user_id")?,
        persona: r.try_get("persona")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const SESSION_COLUMNS: &str = "id, channel, status, user_id, persona, created_at, updated_at";

/// A stored profile's attributes: a JSON object, else the data is corrupt.
fn profile_attributes(
    user: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(StoreError::Corrupt(format!(
            "profile of {user} is not a JSON object"
        ))),
    }
}

impl Store {
    /// Create the session, or update its status, user and persona.
    pub async fn upsert_session(&self, tenant: &str, s: &SessionRecord) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO sessions (tenant_id, id, channel, status, user_id, persona, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, id) DO UPDATE SET status = $4,
                 user_id = COALESCE($5, sessions.user_id), persona = COALESCE($6, sessions.persona), updated_at = $8",
        )
        .bind(tenant)
        .bind(&s.id)
        .bind(&s.channel)
        .bind(&s.status)
        .bind(s.user_id.as_deref())
        .bind(s.persona.as_deref())
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Append messages to a session in order (sequence numbers follow the last stored).
    pub async fn append_messages(
        &self,
        tenant: &str,
        session_id: &str,
        messages: &[MessageRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let last: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS last FROM messages WHERE tenant_id = $1 AND session_id = $2",
        )
        .bind(tenant)
        .bind(session_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("last")?;
        for (i, m) in messages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO messages (tenant_id, session_id, seq, id, role, content, truncated, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant)
            .bind(session_id)
            .bind(last + 1 + i as i64)
            .bind(&m.id)
            .bind(&m.role)
            .bind(&m.content)
            .bind(i64::from(m.truncated))
            .bind(m.created_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE sessions SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(session_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_tool_call(
        &self,
        tenant: &str,
        session_id: &str,
        call: &ToolCallRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO tool_calls (tenant_id, session_id, id, name, arguments, result, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, session_id, id) DO UPDATE SET result = COALESCE($6, tool_calls.result)",
        )
        .bind(tenant)
        .bind(session_id)
        .bind(&call.id)
        .bind(&call.name)
        .bind(&call.arguments)
        .bind(call.result.as_deref())
        .bind(call.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Newest first.
    pub async fn list_sessions(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT s.id, s.channel, s.status, s.user_id, s.persona, s.created_at, s.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.tenant_id = s.tenant_id AND m.session_id = s.id) AS message_count
             FROM sessions s WHERE s.tenant_id = $1 ORDER BY s.updated_at DESC, s.id LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(SessionSummary {
                    session: session(r)?,
                    message_count: r.try_get("message_count")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn get_session(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.as_ref().map(session).transpose()?)
    }

    pub async fn messages(
        &self,
        tenant: &str,
        session_id: &str,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT seq, id, role, content, truncated, created_at FROM messages
             WHERE tenant_id = $1 AND session_id = $2 ORDER BY seq",
        )
        .bind(tenant)
        .bind(session_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(MessageRecord {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    role: r.try_get("role")?,
                    content: r.try_get("content")?,
                    truncated: r.try_get::<i64, _>("truncated")? != 0,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn tool_calls(
        &self,
        tenant: &str,
        session_id: &str,
    ) -> Result<Vec<ToolCallRecord>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT id, name, arguments, result, created_at FROM tool_calls
             WHERE tenant_id = $1 AND session_id = $2 ORDER BY created_at, id",
        )
        .bind(tenant)
        .bind(session_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ToolCallRecord {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    arguments: r.try_get("arguments")?,
                    result: r.try_get("result")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Delete a session with its messages and tool calls. Returns whether it existed.
    pub async fn delete_session(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        for table in ["messages", "tool_calls"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND session_id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let deleted = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    pub async fn get_profile(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<Option<Profile>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT attributes, updated_at FROM profiles WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(r) = row else { return Ok(None) };
        let attributes = profile_attributes(user, &r.try_get::<String, _>("attributes")?)?;
        Ok(Some(Profile {
            user_id: user.to_owned(),
            attributes,
            updated_at: r.try_get("updated_at")?,
        }))
    }

    pub async fn put_profile(&self, tenant: &str, profile: &Profile) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO profiles (tenant_id, user_id, attributes, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET attributes = $3, updated_at = $4",
        )
        .bind(tenant)
        .bind(&profile.user_id)
        .bind(serde_json::Value::Object(profile.attributes.clone()).to_string())
        .bind(profile.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Add attributes to a profile atomically: the row is locked (created empty if new)
    /// before it is read, so a concurrent `put_profile` is neither lost nor overwritten
    /// with stale attributes.
    pub async fn merge_profile(
        &self,
        tenant: &str,
        user: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        // Creating or touching the row takes its write lock (PostgreSQL) or the database's
        // (SQLite) before it is read.
        sqlx::query(
            "INSERT INTO profiles (tenant_id, user_id, attributes, updated_at) VALUES ($1, $2, '{}', $3)
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET updated_at = $3",
        )
        .bind(tenant)
        .bind(user)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let text: String =
            sqlx::query("SELECT attributes FROM profiles WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user)
                .fetch_one(&mut *tx)
                .await?
                .try_get("attributes")?;
        let mut merged = profile_attributes(user, &text)?;
        merged.extend(attributes.clone());
        sqlx::query("UPDATE profiles SET attributes = $3 WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .bind(serde_json::Value::Object(merged).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Add a memory, or update the one with its id (the same fact said again, a session's
    /// newer summary); an unembedded update keeps the stored embedding.
    pub async fn add_memory(&self, tenant: &str, user: &str, m: &Memory) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO memories (tenant_id, user_id, id, kind, text, embedding, session_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, user_id, id)
             DO UPDATE SET text = excluded.text, created_at = excluded.created_at,
                 embedding = CASE WHEN length(excluded.embedding) > 0
                     THEN excluded.embedding ELSE memories.embedding END",
        )
        .bind(tenant)
        .bind(user)
        .bind(&m.id)
        .bind(&m.kind)
        .bind(&m.text)
        .bind(to_bytes(&m.embedding))
        .bind(m.session_id.as_deref())
        .bind(m.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's memories, newest first.
    pub async fn memories(&self, tenant: &str, user: &str) -> Result<Vec<Memory>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT id, kind, text, embedding, session_id, created_at FROM memories
             WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC, id",
        )
        .bind(tenant)
        .bind(user)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let bytes: Option<Vec<u8>> = r.try_get("embedding")?;
                Ok(Memory {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    text: r.try_get("text")?,
                    embedding: bytes.map(|b| from_bytes(&b)).unwrap_or_default(),
                    session_id: r.try_get("session_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn delete_memories(&self, tenant: &str, user: &str) -> Result<u64, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let deleted = sqlx::query("DELETE FROM memories WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    /// Store a document's text (replacing an earlier version with the same id).
    pub async fn put_document(&self, tenant: &str, d: &Document) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO documents (tenant_id, id, filename, content_type, bytes, text, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, id) DO UPDATE SET filename = $3, content_type = $4, bytes = $5, text = $6, created_at = $7",
        )
        .bind(tenant)
        .bind(&d.id)
        .bind(&d.filename)
        .bind(&d.content_type)
        .bind(d.bytes)
        .bind(&d.text)
        .bind(d.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn delete_document(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let deleted = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Every document of every tenant (to rebuild a missing index), as (tenant, document).
    pub async fn all_documents(&self) -> Result<Vec<(String, Document)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, id, filename, content_type, bytes, text, created_at FROM documents ORDER BY tenant_id, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("tenant_id")?,
                    Document {
                        id: r.try_get("id")?,
                        filename: r.try_get("filename")?,
                        content_type: r.try_get("content_type")?,
                        bytes: r.try_get("bytes")?,
                        text: r.try_get("text")?,
                        created_at: r.try_get("created_at")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

-- Switchboard's durable state. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are Unix milliseconds; ids are text made by the gateway; booleans are 0/1.
-- Every row carries tenant_id.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Calls and chats.
CREATE TABLE sessions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    user_id TEXT,
    persona TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sessions_by_update ON sessions (tenant_id, updated_at);
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);

-- User and assistant messages in order. A barged-in reply keeps what was said in
-- `content` and is marked `truncated` (content is then only the heard part).
CREATE TABLE messages (
    tenant_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    truncated BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, session_id, seq)
);

CREATE TABLE tool_calls (
    tenant_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,
    result TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, session_id, id)
);

CREATE TABLE audit_events (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    session_id TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_by_time ON audit_events (tenant_id, created_at);

-- Per-user attributes (name, language, tier, preferences) as one JSON object.
CREATE TABLE profiles (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    attributes TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- Per-user facts and conversation summaries, with their embeddings (little-endian f32).
CREATE TABLE memories (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    embedding BYTEA,
    session_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, id)
);

-- Uploaded knowledge documents as text. Their chunks and embeddings live in the knowledge
-- index (tantivy, in the data directory), which is rebuilt from here when it is missing.
CREATE TABLE documents (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

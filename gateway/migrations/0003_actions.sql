-- Tool calls that change something wait here for the caller's approval. `status`:
-- pending, approved (running), executed, failed, rejected, expired, superseded. `reported`
-- is 1 once the model has been told how the action ended. `arguments` are kept as the
-- model wrote them (the tool needs them); the audit log keeps a redacted copy.
CREATE TABLE pending_actions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT,
    persona TEXT NOT NULL,
    tool TEXT NOT NULL,
    call_id TEXT NOT NULL,
    arguments TEXT NOT NULL,
    effect TEXT NOT NULL,
    prompt TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    reported BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX pending_actions_by_session ON pending_actions (tenant_id, session_id, created_at);
CREATE INDEX pending_actions_due ON pending_actions (status, expires_at);

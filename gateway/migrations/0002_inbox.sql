-- Messages accepted from webhook channels, stored before they are answered so that a crash
-- or restart loses none: `pending` (accepted), `replied` (answer stored, callback owed),
-- `delivered`, or `failed` (delivery gave up). The id is the sender's idempotency key;
-- `reply_to` says where the answer goes: a callback URL, or a channel's JSON address.
CREATE TABLE inbox (
    tenant_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    conversation TEXT NOT NULL,
    user_id TEXT,
    text TEXT NOT NULL,
    reply_to TEXT,
    status TEXT NOT NULL,
    reply TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel, id)
);
CREATE INDEX inbox_due ON inbox (status, next_attempt_at);

-- API keys per tenant. The key itself is shown once, when it is created; only the SHA-256
-- of its secret part is kept. `scopes` is space-separated (realtime chat audio admin).
-- `id` is the key's public part (`key_` + 16 hex digits), unique across tenants, so a
-- presented key is found without knowing its tenant.
CREATE TABLE api_keys (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    PRIMARY KEY (id)
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

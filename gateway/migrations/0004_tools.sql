-- OpenAPI imports: the tools proposed from a document, kept for review until approved.
-- `proposals` is the JSON array the import answered with; `status`: proposed, approved.
CREATE TABLE tool_imports (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    persona TEXT NOT NULL,
    title TEXT NOT NULL,
    proposals TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Approved tools, live for a persona (loaded at start-up, installed at once on approval).
-- `definition` is the tool as JSON (the persona file's shape).
CREATE TABLE installed_tools (
    tenant_id TEXT NOT NULL,
    persona TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    import_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, persona, name)
);

-- PostgreSQL only (SQLite records the version and skips it): row-level security as a
-- second wall behind the `tenant_id = $1` of every query. A tenant's reads and deletes run
-- in a transaction as the role `switchboard_tenant` with `switchboard.tenant` set to the
-- tenant (store/mod.rs `tenant_tx`); these policies then hide every other tenant's rows,
-- even from a query that forgot its tenant condition. The gateway's own login role owns
-- the tables and is not subject to them (ENABLE, not FORCE), so work that serves every
-- tenant (the inbox worker, rebuilding the index) is unchanged.
-- The role is cluster-wide; databases migrating at once may race to create it.
DO $$ BEGIN CREATE ROLE switchboard_tenant NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
GRANT switchboard_tenant TO CURRENT_USER;
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, messages, tool_calls, audit_events, profiles, memories, documents, inbox, pending_actions, tool_imports, installed_tools, api_keys TO switchboard_tenant;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE pending_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE installed_tools ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON sessions TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON messages TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON tool_calls TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON audit_events TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON profiles TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON memories TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON documents TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON inbox TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON pending_actions TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON tool_imports TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON installed_tools TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));
CREATE POLICY tenant_rows ON api_keys TO switchboard_tenant USING (tenant_id = current_setting('switchboard.tenant', true)) WITH CHECK (tenant_id = current_setting('switchboard.tenant', true));

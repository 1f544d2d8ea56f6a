-- Up Migration
-- Cells: tenant schemas live in cell databases (tenants/cells.ts) and this database holds the catalog only.
-- No tenant role may connect here: advisory locks (the tenant lock, node-pg-migrate's lock) and NOTIFY on
-- tenant_lifecycle are open to every role that can connect to a database.
-- A catalog that still holds tenant schemas (the layout before cells) keeps the old group's CONNECT until
-- those tenants are moved to a cell (runbooks/tenant-migrations.md, "Cells and moves").
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_platform_tenants')
     AND NOT EXISTS (SELECT 1 FROM control.tenants t JOIN pg_namespace n ON n.nspname = t.id) THEN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM agent_platform_tenants', current_database());
  END IF;
END
$$;

-- Down Migration
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_platform_tenants') THEN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO agent_platform_tenants', current_database());
  END IF;
END
$$;

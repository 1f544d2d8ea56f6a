-- Up Migration
-- What onboarding needs on top of the catalog: hostnames, per-step provisioning state,
-- a per-cell tenant count kept by a trigger (placement reads one row per cell, never the tenant list),
-- and the database-wide grants that keep tenant roles inside their own schema.

ALTER TABLE control.tenants ADD COLUMN hostname text;
CREATE UNIQUE INDEX tenants_hostname_key ON control.tenants (hostname);

ALTER TABLE control.cells ADD COLUMN tenant_count integer NOT NULL DEFAULT 0 CHECK (tenant_count >= 0);
UPDATE control.cells c SET tenant_count = (SELECT count(*) FROM control.tenants t WHERE t.cell_id = c.id);

CREATE FUNCTION control.count_cell_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE control.cells SET tenant_count = tenant_count + 1 WHERE id = NEW.cell_id;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE control.cells SET tenant_count = tenant_count - 1 WHERE id = OLD.cell_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER tenants_count_per_cell
  AFTER INSERT OR DELETE OR UPDATE OF cell_id ON control.tenants
  FOR EACH ROW EXECUTE FUNCTION control.count_cell_tenants();

-- Least-loaded first; placement takes the first cell with room.
CREATE VIEW control.cell_placement AS
  SELECT id, capacity, tenant_count, capacity - tenant_count AS free_slots,
         round(tenant_count::numeric / capacity, 4) AS load
    FROM control.cells
   ORDER BY tenant_count::numeric / capacity, id;

-- Last outcome of each provisioning step per tenant, so an operator sees where a tenant stopped.
CREATE TABLE control.provisioning_steps (
  tenant_id text NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
  step text NOT NULL,
  state text NOT NULL CHECK (state IN ('done', 'failed')),
  duration_ms numeric(12, 2),
  error text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, step)
);

-- Tenant roles get CONNECT through this group: granting on the database row per tenant
-- would make concurrent onboardings fail with "tuple concurrently updated".
DO $$
BEGIN
  CREATE ROLE agent_platform_tenants NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL; -- roles are server-wide; another database of this server created it
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO agent_platform_tenants', current_database());
END
$$;

-- Down Migration
DO $$
BEGIN
  EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM agent_platform_tenants', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$$;
DROP TABLE control.provisioning_steps;
DROP VIEW control.cell_placement;
DROP TRIGGER tenants_count_per_cell ON control.tenants;
DROP FUNCTION control.count_cell_tenants();
ALTER TABLE control.cells DROP COLUMN tenant_count;
DROP INDEX control.tenants_hostname_key;
ALTER TABLE control.tenants DROP COLUMN hostname;

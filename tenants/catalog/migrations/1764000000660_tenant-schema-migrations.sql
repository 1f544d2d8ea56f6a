-- Up Migration
-- Tenant-schema migrations (`tenant migrate`): the "nothing to do" check reads this index alone, and the
-- last failure per tenant stays visible until a run migrates it.
CREATE INDEX tenants_schema_version_idx ON control.tenants (schema_version) WHERE status <> 'archived';

CREATE TABLE control.tenant_migration_failures (
  tenant_id text PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
  from_version integer NOT NULL,
  to_version integer NOT NULL,
  error text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE control.tenant_migration_failures;
DROP INDEX control.tenants_schema_version_idx;

-- Up Migration
-- Which roles onboarding created, by oid: a same-named role made by anyone else (or dropped and made again)
-- has another oid, so onboarding refuses to adopt it. Tenants cannot write the control schema.
CREATE TABLE control.tenant_roles (
  tenant_id text PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
  role_oid oid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Roles of tenants onboarded before this table existed: a role that owns its tenant's schema was made by onboarding.
INSERT INTO control.tenant_roles (tenant_id, role_oid)
SELECT t.id, r.oid
  FROM control.tenants t
  JOIN pg_roles r ON r.rolname = t.id
  JOIN pg_namespace n ON n.nspname = t.id AND n.nspowner = r.oid;

-- Large objects live outside every schema, so offboarding's per-schema archive would miss them and the
-- objects would outlive the tenant: no tenant role may create one in this database.
-- (Server-side lo_import is already superuser-only.)
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid),
  pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC;

-- Down Migration
GRANT EXECUTE ON FUNCTION pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid),
  pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC;
DROP TABLE control.tenant_roles;

-- Up Migration
-- The catalog: one row per tenant plus everything the control plane and the cost guard need about it.
REVOKE ALL ON SCHEMA control FROM PUBLIC;

CREATE TABLE control.cells (
  id text PRIMARY KEY,
  -- Tenants a cell may hold before placement prefers another.
  capacity integer NOT NULL CHECK (capacity > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO control.cells (id, capacity) VALUES ('cell-1', 5000);

CREATE TYPE control.tenant_status AS ENUM ('provisioning', 'active', 'limited', 'suspended', 'offboarding', 'archived');

CREATE TABLE control.tenants (
  id text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,28}[a-z0-9]$'),
  tier text NOT NULL CHECK (tier IN ('free', 'starter', 'pro', 'enterprise')),
  status control.tenant_status NOT NULL DEFAULT 'provisioning',
  cell_id text NOT NULL REFERENCES control.cells (id),
  -- Version of the tenant-schema migrations applied to this tenant's schema.
  schema_version integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  status_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_cell_idx ON control.tenants (cell_id);
CREATE INDEX tenants_status_idx ON control.tenants (status);

CREATE TABLE control.api_keys (
  -- Public, non-secret part of the key, used to find the row; the secret is only ever stored hashed.
  prefix text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  last_used_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON control.api_keys (tenant_id);

-- The cost guard's per-tenant breaker state, and what it changed so that a suspension can be undone.
CREATE TABLE control.quota_state (
  tenant_id text PRIMARY KEY REFERENCES control.tenants (id),
  guard_state text NOT NULL DEFAULT 'ok' CHECK (guard_state IN ('ok', 'warning', 'limited', 'suspended')),
  -- Billing period the state belongs to, as YYYY-MM in UTC.
  period text NOT NULL,
  saved_settings jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Metered usage, aggregated per tenant and UTC day.
CREATE TABLE control.usage (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  day date NOT NULL,
  agent_minutes numeric(14, 3) NOT NULL DEFAULT 0 CHECK (agent_minutes >= 0),
  api_calls bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
  PRIMARY KEY (tenant_id, day)
);

-- Idempotency keys of usage reports already counted.
CREATE TABLE control.usage_reports (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  idempotency_key text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, idempotency_key)
);

-- Every status transition and every action taken on a tenant: who, why, and the evidence.
-- No foreign key: the trail must outlive the tenant row.
CREATE TABLE control.audit_events (
  id bigserial PRIMARY KEY,
  tenant_id text,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  from_status text,
  to_status text,
  reason text,
  evidence jsonb
);
CREATE INDEX audit_events_tenant_idx ON control.audit_events (tenant_id, at);

-- Down Migration
DROP TABLE control.audit_events;
DROP TABLE control.usage_reports;
DROP TABLE control.usage;
DROP TABLE control.quota_state;
DROP TABLE control.api_keys;
DROP TABLE control.tenants;
DROP TYPE control.tenant_status;
DROP TABLE control.cells;

-- Up Migration
-- Cost guard: every run's inputs (so a run can be replayed), notifications already sent, and operator overrides.

-- Inputs are stored before the guard decides; the plan is stored once decided.
CREATE TABLE control.cost_guard_runs (
  id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- Billing period as YYYY-MM in UTC.
  period text NOT NULL CHECK (period ~ '^\d{4}-\d{2}$'),
  mode text NOT NULL CHECK (mode IN ('dry-run', 'apply')),
  -- Costs (with the Estimated flag and data time), usage, current states, overrides and config.
  inputs jsonb NOT NULL,
  plan jsonb,
  -- Cost Explorer requests made, retries included: each costs USD 0.01.
  ce_requests integer NOT NULL DEFAULT 0 CHECK (ce_requests >= 0),
  outcome text
);
CREATE INDEX cost_guard_runs_period_idx ON control.cost_guard_runs (period, started_at);

-- One notification per tenant, period and kind (a state change, or a request for a human).
CREATE TABLE control.cost_guard_notifications (
  tenant_id text NOT NULL,
  period text NOT NULL,
  kind text NOT NULL,
  run_id bigint REFERENCES control.cost_guard_runs (id),
  message_id text,
  sent_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, period, kind)
);

-- While an override is live, the guard takes no hard action (limit or suspend) on the tenant.
CREATE TABLE control.cost_guard_overrides (
  tenant_id text PRIMARY KEY REFERENCES control.tenants (id),
  expires_at timestamptz NOT NULL,
  reason text NOT NULL CHECK (reason <> ''),
  actor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Consecutive runs that saw a tenant above a line it needs confirmations for (suspension).
ALTER TABLE control.quota_state
  ADD COLUMN pending_state text CHECK (pending_state IN ('ok', 'warning', 'limited', 'suspended')),
  ADD COLUMN pending_runs integer NOT NULL DEFAULT 0 CHECK (pending_runs >= 0);

-- Down Migration
ALTER TABLE control.quota_state DROP COLUMN pending_runs, DROP COLUMN pending_state;
DROP TABLE control.cost_guard_overrides;
DROP TABLE control.cost_guard_notifications;
DROP TABLE control.cost_guard_runs;

-- Up Migration
-- Hourly metering: what billing exports (per tenant, meter and hour) and what the cost guard judges.

-- Reported usage per tenant and UTC hour, written in the same statement as the daily row in control.usage.
CREATE TABLE control.usage_hourly (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  hour timestamptz NOT NULL CHECK (date_trunc('hour', hour, 'UTC') = hour),
  agent_minutes numeric(14, 3) NOT NULL DEFAULT 0 CHECK (agent_minutes >= 0),
  api_calls bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
  PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX usage_hourly_hour_idx ON control.usage_hourly (hour);

-- Daily rows written before hourly metering are carried as their day's first hour, so no total changes.
INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls)
SELECT tenant_id, day::timestamp AT TIME ZONE 'UTC', agent_minutes, api_calls FROM control.usage;

-- Agent-minutes the control plane's leases ran, one row per lease and UTC hour. A row holds the overlap of
-- the lease's known run time with the hour, an absolute figure that only grows: writers upsert it with
-- greatest(), so a retry, a replay after a crash or two replicas writing the same lease count it once.
CREATE TABLE control.lease_minutes (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  hour timestamptz NOT NULL CHECK (date_trunc('hour', hour, 'UTC') = hour),
  task_id text NOT NULL,
  -- The lease's grant time: a task leased again after its lease ended is a new lease.
  lease_started_at timestamptz NOT NULL,
  minutes numeric(14, 3) NOT NULL CHECK (minutes >= 0 AND minutes <= 60),
  PRIMARY KEY (tenant_id, hour, task_id, lease_started_at)
);
CREATE INDEX lease_minutes_hour_idx ON control.lease_minutes (hour);

-- Down Migration
DROP TABLE control.lease_minutes;
DROP TABLE control.usage_hourly;

-- Up Migration
-- Metered usage per tenant and UTC hour, written with the daily row (control.usage) in the same statement;
-- billing exports it to Stripe in hourly buckets.
CREATE TABLE control.usage_hourly (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  hour timestamptz NOT NULL CHECK (hour = date_trunc('hour', hour)),
  agent_minutes numeric(14, 3) NOT NULL DEFAULT 0 CHECK (agent_minutes >= 0),
  api_calls bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
  PRIMARY KEY (tenant_id, hour)
);

-- Down Migration
DROP TABLE control.usage_hourly;

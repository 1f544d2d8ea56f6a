-- Up Migration
-- Billing: each tenant's Stripe customer, what the export sent per hourly bucket, and the runs.

-- One Stripe customer per tenant; the subscription holds the tier's three prices.
CREATE TABLE control.billing_customers (
  tenant_id text PRIMARY KEY REFERENCES control.tenants (id),
  stripe_customer_id text NOT NULL UNIQUE CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9]+$'),
  stripe_subscription_id text UNIQUE CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]+$'),
  -- Set when offboarding asked Stripe to end the subscription at the end of its period.
  closing_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The latest revision sent (or being sent) of each hourly bucket. A row is written as 'pending' and
-- committed before its batch goes to Stripe, then marked 'sent': a run killed in between replays exactly
-- that identifier and value, so an identifier never carries two values.
CREATE TABLE control.billing_buckets (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  meter text NOT NULL CHECK (meter IN ('agent_minutes', 'api_calls')),
  hour timestamptz NOT NULL CHECK (hour = date_trunc('hour', hour)),
  revision integer NOT NULL CHECK (revision BETWEEN 0 AND 3599),
  quantity numeric(20, 3) NOT NULL CHECK (quantity >= 0),
  identifier text NOT NULL UNIQUE,
  stripe_customer_id text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'sent')),
  run_id bigint,
  first_sent_at timestamptz,
  sent_at timestamptz,
  PRIMARY KEY (tenant_id, meter, hour)
);
CREATE INDEX billing_buckets_pending_idx ON control.billing_buckets (tenant_id) WHERE state = 'pending';

CREATE TABLE control.billing_export_runs (
  id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
  since timestamptz NOT NULL,
  until timestamptz NOT NULL,
  -- Counts, updated as batches commit: events, corrections, replays, requests, tenants skipped or stopped.
  progress jsonb NOT NULL DEFAULT '{}'::jsonb,
  problems jsonb NOT NULL DEFAULT '[]'::jsonb
);

-- What reconcile found for a month, and the invoiced revenue the cost report uses.
CREATE TABLE control.billing_reconcile_runs (
  id bigserial PRIMARY KEY,
  month text NOT NULL CHECK (month ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  at timestamptz NOT NULL DEFAULT now(),
  tolerance numeric NOT NULL,
  differences jsonb NOT NULL,
  over_tolerance integer NOT NULL,
  notified boolean NOT NULL DEFAULT false
);

CREATE TABLE control.billing_revenue (
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  period text NOT NULL CHECK (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  amount_usd numeric(14, 2) NOT NULL,
  invoices integer NOT NULL,
  fetched_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, period)
);

-- Down Migration
DROP TABLE control.billing_revenue;
DROP TABLE control.billing_reconcile_runs;
DROP TABLE control.billing_export_runs;
DROP TABLE control.billing_buckets;
DROP TABLE control.billing_customers;

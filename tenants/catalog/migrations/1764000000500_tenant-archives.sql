-- Up Migration
-- Verified archives written by offboarding. A tenant's schema is dropped only after a row here names a
-- gzip file whose sha256 and per-table row counts were checked; the row outlives the schema (history).
CREATE TABLE control.tenant_archives (
  tenant_id text NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
  path text NOT NULL,
  bytes bigint NOT NULL CHECK (bytes > 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  row_counts jsonb NOT NULL,
  verified_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, path)
);

-- Down Migration
DROP TABLE control.tenant_archives;

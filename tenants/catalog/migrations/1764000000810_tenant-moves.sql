-- Up Migration
-- A move in progress (`tenant move`): where from, where to, and the status to give back at the end. The row
-- is written before the move suspends the tenant and deleted when it resumes it, so a rerun after a crash
-- at any step picks the same move up; a tenant has at most one.
CREATE TABLE control.tenant_moves (
  tenant_id text PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
  from_cell text NOT NULL REFERENCES control.cells (id),
  to_cell text NOT NULL REFERENCES control.cells (id),
  previous_status control.tenant_status NOT NULL,
  -- The pg_dump of the schema (custom format) this move restores from.
  dump_path text,
  -- The role the move created on the target's server (cells on two servers), so a rerun knows it as ours.
  to_role_oid oid,
  started_at timestamptz NOT NULL DEFAULT now(),
  CHECK (from_cell <> to_cell)
);

-- Down Migration
DROP TABLE control.tenant_moves;

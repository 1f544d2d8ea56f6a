-- Up Migration
-- One row per run of a scheduled job (CronJob), written by bin/with-heartbeat.ts: a row at the start
-- and its end and exit code when the command exits, so a run that never finished shows as such.
CREATE TABLE control.job_runs (
  id bigserial PRIMARY KEY,
  job text NOT NULL CHECK (job ~ '^[a-z][a-z0-9-]{0,62}$'),
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  exit_code integer,
  CHECK ((finished_at IS NULL) = (exit_code IS NULL))
);
CREATE INDEX job_runs_job_idx ON control.job_runs (job, started_at DESC);

-- Down Migration
DROP TABLE control.job_runs;

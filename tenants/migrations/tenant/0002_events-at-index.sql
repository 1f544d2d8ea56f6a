-- Retention prunes events by age alone; events_run_idx leads with run_id and cannot serve that scan.
CREATE INDEX events_at_idx ON :"schema".events (at);

-- Up Migration
-- Usage per tenant and UTC month, kept by triggers on control.usage in the writer's own transaction, so
-- every writer (the ingest, the CLIs, the tests) keeps it true. The console sorts 10,000 tenants by
-- their month's usage from this table instead of summing every day of every tenant on each page view.
CREATE TABLE control.usage_months (
  month date NOT NULL CHECK (month = date_trunc('month', month)::date),
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  agent_minutes numeric(16, 3) NOT NULL DEFAULT 0,
  api_calls bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (month, tenant_id)
);

-- Statement-level with transition tables: one upsert per ingest batch, not one per row. Rows are added
-- in key order so that concurrent writers lock the month rows in the same order.
CREATE FUNCTION control.usage_months_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO control.usage_months AS m (month, tenant_id, agent_minutes, api_calls)
    SELECT date_trunc('month', day)::date, tenant_id, sum(agent_minutes), sum(api_calls)
      FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (month, tenant_id) DO UPDATE
      SET agent_minutes = m.agent_minutes + EXCLUDED.agent_minutes, api_calls = m.api_calls + EXCLUDED.api_calls;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO control.usage_months AS m (month, tenant_id, agent_minutes, api_calls)
    SELECT date_trunc('month', day)::date, tenant_id, sum(agent_minutes), sum(api_calls)
      FROM (SELECT day, tenant_id, agent_minutes, api_calls FROM new_rows
            UNION ALL
            SELECT day, tenant_id, -agent_minutes, -api_calls FROM old_rows) AS delta
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (month, tenant_id) DO UPDATE
      SET agent_minutes = m.agent_minutes + EXCLUDED.agent_minutes, api_calls = m.api_calls + EXCLUDED.api_calls;
  ELSE
    UPDATE control.usage_months AS m
       SET agent_minutes = m.agent_minutes - d.agent_minutes, api_calls = m.api_calls - d.api_calls
      FROM (SELECT date_trunc('month', day)::date AS month, tenant_id, sum(agent_minutes) AS agent_minutes,
                   sum(api_calls) AS api_calls
              FROM old_rows GROUP BY 1, 2) AS d
     WHERE m.month = d.month AND m.tenant_id = d.tenant_id;
  END IF;
  RETURN NULL;
END
$$;

-- PostgreSQL allows transition tables only on single-event triggers, hence three.
CREATE TRIGGER usage_months_insert AFTER INSERT ON control.usage
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION control.usage_months_apply();
CREATE TRIGGER usage_months_update AFTER UPDATE ON control.usage
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION control.usage_months_apply();
CREATE TRIGGER usage_months_delete AFTER DELETE ON control.usage
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION control.usage_months_apply();

INSERT INTO control.usage_months (month, tenant_id, agent_minutes, api_calls)
SELECT date_trunc('month', day)::date, tenant_id, sum(agent_minutes), sum(api_calls)
  FROM control.usage GROUP BY 1, 2;

-- Down Migration
DROP TRIGGER usage_months_delete ON control.usage;
DROP TRIGGER usage_months_update ON control.usage;
DROP TRIGGER usage_months_insert ON control.usage;
DROP FUNCTION control.usage_months_apply();
DROP TABLE control.usage_months;

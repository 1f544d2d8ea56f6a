import pg from 'pg';

/** Version of the starting schema below; recorded as control.tenants.schema_version. */
export const TENANT_SCHEMA_VERSION = 1;

/** Tables every tenant schema holds. */
export const TENANT_TABLES = ['agents', 'events', 'runs', 'tasks'] as const;

/**
 * The starting schema of an agent platform tenant. Every name is schema-qualified, so nothing
 * depends on search_path. Idempotent, so a rerun after a crash converges.
 */
export function tenantSchemaStatements(tenantId: string): string[] {
  const s = pg.escapeIdentifier(tenantId);
  return [
    `CREATE TABLE IF NOT EXISTS ${s}.agents (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       name text NOT NULL UNIQUE,
       model text NOT NULL,
       config jsonb NOT NULL DEFAULT '{}',
       created_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS ${s}.tasks (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       agent_id bigint NOT NULL REFERENCES ${s}.agents (id) ON DELETE CASCADE,
       status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
       input jsonb NOT NULL DEFAULT '{}',
       created_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE INDEX IF NOT EXISTS tasks_agent_idx ON ${s}.tasks (agent_id)`,
    `CREATE INDEX IF NOT EXISTS tasks_open_idx ON ${s}.tasks (created_at) WHERE status IN ('queued', 'running')`,
    `CREATE TABLE IF NOT EXISTS ${s}.runs (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       task_id bigint NOT NULL REFERENCES ${s}.tasks (id) ON DELETE CASCADE,
       status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
       started_at timestamptz NOT NULL DEFAULT now(),
       finished_at timestamptz,
       agent_minutes numeric(12, 3) NOT NULL DEFAULT 0 CHECK (agent_minutes >= 0))`,
    `CREATE INDEX IF NOT EXISTS runs_task_idx ON ${s}.runs (task_id)`,
    `CREATE TABLE IF NOT EXISTS ${s}.events (
       id bigserial PRIMARY KEY,
       run_id bigint NOT NULL REFERENCES ${s}.runs (id) ON DELETE CASCADE,
       at timestamptz NOT NULL DEFAULT now(),
       kind text NOT NULL,
       payload jsonb NOT NULL DEFAULT '{}')`,
    `CREATE INDEX IF NOT EXISTS events_run_idx ON ${s}.events (run_id, at)`,
  ];
}

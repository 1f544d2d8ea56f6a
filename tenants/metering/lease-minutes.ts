import type pg from 'pg';
import { minutesByHour } from './hours.ts';

/** What is known of one lease: it was granted at `startedAt` and ran at least until `until` (ms). */
export interface LeaseRun {
  readonly tenantId: string;
  readonly taskId: string;
  readonly startedAt: number;
  readonly until: number;
}

// Sorted rows and greatest(): concurrent writers lock rows in one order and never lower a figure.
const WRITE_SQL = `
INSERT INTO control.lease_minutes AS m (tenant_id, hour, task_id, lease_started_at, minutes)
SELECT tenant_id, hour, task_id, lease_started_at, minutes
  FROM json_to_recordset($1::json)
    AS t(tenant_id text, hour timestamptz, task_id text, lease_started_at timestamptz, minutes numeric)
 ORDER BY tenant_id, hour, task_id, lease_started_at
ON CONFLICT (tenant_id, hour, task_id, lease_started_at) DO UPDATE
  SET minutes = greatest(m.minutes, EXCLUDED.minutes)`;

/**
 * Writes leased agent-minutes per lease and UTC hour. Each row is the lease's absolute run time in that
 * hour, so writing the same or an older run again changes nothing: the write is safe to retry and to
 * repeat from several replicas.
 */
export async function recordLeaseRuns(db: pg.Pool | pg.PoolClient, runs: readonly LeaseRun[]): Promise<void> {
  const rows = new Map<
    string,
    { tenant_id: string; hour: string; task_id: string; lease_started_at: string; minutes: number }
  >();
  for (const run of runs) {
    const leaseStartedAt = new Date(run.startedAt).toISOString();
    for (const { hour, minutes } of minutesByHour(run.startedAt, run.until)) {
      const key = `${run.tenantId}\u0000${hour}\u0000${run.taskId}\u0000${leaseStartedAt}`;
      const rounded = Math.round(minutes * 1000) / 1000;
      const seen = rows.get(key);
      // One row may appear once per statement: keep the furthest run of a lease.
      if (seen === undefined || seen.minutes < rounded) {
        rows.set(key, {
          tenant_id: run.tenantId,
          hour,
          task_id: run.taskId,
          lease_started_at: leaseStartedAt,
          minutes: rounded,
        });
      }
    }
  }
  if (rows.size === 0) return;
  await db.query({
    name: 'metering-lease-minutes-write',
    text: WRITE_SQL,
    values: [JSON.stringify([...rows.values()])],
  });
}

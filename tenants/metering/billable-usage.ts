import type pg from 'pg';
import { z } from 'zod';
import { parseTenantId } from '../tenant-id.ts';

/** One tenant's billable usage in one UTC hour. */
export interface BillableHour {
  readonly tenantId: string;
  /** Start of the UTC hour, ISO 8601 (`2026-12-02T13:00:00.000Z`). */
  readonly hour: string;
  /** The larger of reported and leased agent-minutes in this hour: the figure that bills. */
  readonly agentMinutes: number;
  readonly reportedAgentMinutes: number;
  readonly leasedAgentMinutes: number;
  /** Reported API calls. */
  readonly apiCalls: number;
}

const windowSchema = z
  .object({
    from: z.date(),
    to: z.date(),
    tenantIds: z.array(z.string()).optional(),
  })
  .refine((w) => w.from.getTime() < w.to.getTime(), { message: "'from' must be before 'to'" });

export type UsageWindow = z.input<typeof windowSchema>;

// Reported and leased figures per tenant and hour, side by side; $3 null means every tenant.
const HOURS_SQL = `
WITH reported AS (
  SELECT tenant_id, hour, agent_minutes, api_calls
    FROM control.usage_hourly
   WHERE hour >= $1 AND hour < $2 AND ($3::text[] IS NULL OR tenant_id = ANY($3))
), leased AS (
  SELECT tenant_id, hour, sum(minutes) AS minutes
    FROM control.lease_minutes
   WHERE hour >= $1 AND hour < $2 AND ($3::text[] IS NULL OR tenant_id = ANY($3))
   GROUP BY tenant_id, hour
), hours AS (
  SELECT tenant_id, hour,
         coalesce(r.agent_minutes, 0) AS reported, coalesce(l.minutes, 0) AS leased,
         coalesce(r.api_calls, 0) AS api_calls
    FROM reported r FULL JOIN leased l USING (tenant_id, hour)
)`;

function parseWindow(window: UsageWindow): [Date, Date, string[] | null] {
  const parsed = windowSchema.safeParse(window);
  if (!parsed.success) throw new RangeError(`usage window: ${parsed.error.issues[0]!.message}`);
  const ids = parsed.data.tenantIds?.map((id) => parseTenantId(id)) ?? null;
  return [parsed.data.from, parsed.data.to, ids];
}

/**
 * Billable usage per tenant and UTC hour whose start lies in [from, to): agent-minutes are the larger of
 * what the tenant reported and what its leases ran in that hour. Hours with no usage have no row.
 */
export async function billableUsageByHour(
  db: pg.Pool | pg.PoolClient,
  window: UsageWindow,
): Promise<BillableHour[]> {
  const { rows } = await db.query<{
    tenant_id: string;
    hour: Date;
    reported: number;
    leased: number;
    api_calls: string;
  }>(
    `${HOURS_SQL}
     SELECT tenant_id, hour, reported::float8 AS reported, leased::float8 AS leased, api_calls::text
       FROM hours ORDER BY tenant_id, hour`,
    parseWindow(window),
  );
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    hour: r.hour.toISOString(),
    agentMinutes: Math.max(r.reported, r.leased),
    reportedAgentMinutes: r.reported,
    leasedAgentMinutes: r.leased,
    apiCalls: Number(r.api_calls),
  }));
}

/** A tenant's billable usage summed over a window: what the cost guard judges and the invoice charges. */
export interface BillableTotal {
  readonly agentMinutes: number;
  readonly reportedAgentMinutes: number;
  readonly leasedAgentMinutes: number;
  readonly apiCalls: number;
}

/** billableUsageByHour summed per tenant, in one query (the cost guard reads every tenant each run). */
export async function billableUsageByTenant(
  db: pg.Pool | pg.PoolClient,
  window: UsageWindow,
): Promise<Map<string, BillableTotal>> {
  const { rows } = await db.query<{
    tenant_id: string;
    agent_minutes: number;
    reported: number;
    leased: number;
    api_calls: string;
  }>(
    `${HOURS_SQL}
     SELECT tenant_id, sum(greatest(reported, leased))::float8 AS agent_minutes,
            sum(reported)::float8 AS reported, sum(leased)::float8 AS leased, sum(api_calls)::text AS api_calls
       FROM hours GROUP BY tenant_id`,
    parseWindow(window),
  );
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      {
        agentMinutes: r.agent_minutes,
        reportedAgentMinutes: r.reported,
        leasedAgentMinutes: r.leased,
        apiCalls: Number(r.api_calls),
      },
    ]),
  );
}

/** The UTC month `YYYY-MM` as a window. */
export function monthWindow(period: string): { from: Date; to: Date } {
  const [year, month] = period.split('-').map(Number) as [number, number];
  return { from: new Date(Date.UTC(year, month - 1, 1)), to: new Date(Date.UTC(year, month, 1)) };
}

import type pg from 'pg';
import { z } from 'zod';
import { monthProgress, type UsageStanding, usageStanding } from '../../tenants/cost-guard/projection.ts';
import { GUARD_STATES } from '../../tenants/cost-guard/rules.ts';
import { TENANT_STATUSES } from '../../tenants/lifecycle/status.ts';
import { billableUsageByTenant, monthWindow } from '../../tenants/metering/billable-usage.ts';
import { getTier, TIER_NAMES, TIERS } from '../../tenants/tiers.ts';
import type { LeaseStore } from '../lease-store.ts';

export { TENANT_STATUSES };

/**
 * Columns the tenants table sorts by; each maps to a fixed SQL expression, never to request text. Usage
 * sorts read the catalog's monthly rollup of reported usage; the page's rows then show the quota's own
 * figure (the largest of reported, leased and billable minutes), read for those rows only.
 */
const SORTS = {
  id: 't.id',
  status: 't.status',
  tier: 't.tier',
  cell: 't.cell_id',
  // By severity (the guard's own order), not by the state's name.
  guard: `array_position(ARRAY[${GUARD_STATES.map((g) => `'${g}'`).join(', ')}], coalesce(q.guard_state, 'ok'))`,
  created: 't.created_at',
  'agent-minutes': 'coalesce(u.agent_minutes, 0) / tq.agent_minutes',
  'api-calls': 'coalesce(u.api_calls, 0)::float8 / tq.api_calls',
} as const;
export type TenantSort = keyof typeof SORTS;
export const TENANT_SORTS = Object.keys(SORTS) as TenantSort[];

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (v === undefined || v === '' ? [] : Array.isArray(v) ? v : [v]), z.array(item));

/** The tenants page's query string, validated. */
export const tenantQuerySchema = z.strictObject({
  status: oneOrMany(z.enum(TENANT_STATUSES)),
  tier: oneOrMany(z.enum(TIER_NAMES)),
  sort: z.enum(TENANT_SORTS as [TenantSort, ...TenantSort[]]).default('id'),
  order: z.enum(['asc', 'desc']).default('asc'),
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  size: z.coerce.number().int().min(10).max(200).default(50),
});
export type TenantQuery = z.infer<typeof tenantQuerySchema>;

export interface TenantRow {
  readonly id: string;
  readonly status: string;
  readonly tier: string;
  readonly cell: string;
  readonly guardState: string;
  /** The figures of GET /v1/tenants/:id/usage: quota usage, metered cost and the projection. */
  readonly standing: UsageStanding;
  /** The latest guard run's Cost Explorer figure for the tenant; null before a run or without one. */
  readonly billedUsd: number | null;
}

export interface TenantPage {
  readonly rows: TenantRow[];
  readonly total: number;
  readonly period: string;
}

/** WHERE clause of the status and tier filters, numbering its parameters after `offset` others. */
function filterClause(query: TenantQuery, offset: number): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.status.length > 0) {
    params.push(query.status);
    where.push(`t.status::text = ANY($${offset + params.length})`);
  }
  if (query.tier.length > 0) {
    params.push(query.tier);
    where.push(`t.tier = ANY($${offset + params.length})`);
  }
  return { sql: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', params };
}

const TIER_QUOTAS_SQL = `SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) AS tq(tier, agent_minutes, api_calls)`;

/**
 * One page of tenants with this month's usage, cost and guard state. Filtering, sorting and paging
 * run in PostgreSQL over the tenants, their guard state and the monthly usage rollup, and billed cost
 * is read once per page from the latest guard run, so 10,000 tenants cost about the page time of 100.
 */
export async function tenantPage(
  pool: pg.Pool,
  leases: Pick<LeaseStore, 'leasedMinutes'>,
  query: TenantQuery,
  now = new Date(),
): Promise<TenantPage> {
  const { start } = monthProgress(now);
  const month = start.toISOString().slice(0, 10);
  const period = month.slice(0, 7);
  const params: unknown[] = [
    TIERS.map((t) => t.name),
    TIERS.map((t) => t.agentMinutesPerMonth),
    TIERS.map((t) => t.apiCallsPerMonth),
    month,
    period,
  ];
  const filtered = filterClause(query, params.length);
  params.push(...filtered.params);
  const needsUsage = query.sort === 'agent-minutes' || query.sort === 'api-calls';
  const usageJoin = needsUsage
    ? `JOIN tq ON tq.tier = t.tier
       LEFT JOIN control.usage_months u ON u.month = $4::date AND u.tenant_id = t.id`
    : '';
  // Counted first, apart: a window count would make PostgreSQL join and sort every tenant even for a
  // page the primary key index serves directly.
  const counted = filterClause(query, 0);
  const total =
    (
      await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM control.tenants t ${counted.sql}`,
        counted.params,
      )
    ).rows[0]?.n ?? 0;
  // A page past the middle is read from the other end, so the sort keeps a few rows, not all of them.
  const offset = (query.page - 1) * query.size;
  const fromEnd = offset > total / 2;
  const limit = fromEnd ? Math.max(0, Math.min(query.size, total - offset)) : query.size;
  params.push(limit, fromEnd ? Math.max(0, total - offset - limit) : offset);
  const direction = (query.order === 'desc') !== fromEnd ? 'DESC' : 'ASC';
  const tieBreak = fromEnd ? 'DESC' : 'ASC';
  // The guard state and the usage rollup are joined over every tenant only when the sort needs them;
  // otherwise for the page's rows alone. The sort key travels with the page, so the outer query keeps
  // its order whatever join the planner picks, and PostgreSQL still keeps only the top rows in its sort.
  const sql = `
    WITH tq AS (${TIER_QUOTAS_SQL}),
    page AS (
      SELECT t.id, t.status::text AS status, t.tier, t.cell_id, ${SORTS[query.sort]} AS sort_key
        FROM control.tenants t
        ${query.sort === 'guard' ? 'LEFT JOIN control.quota_state q ON q.tenant_id = t.id' : ''}
        ${usageJoin}
        ${filtered.sql}
       ORDER BY sort_key ${direction}, t.id ${tieBreak}
       LIMIT $${params.length - 1} OFFSET $${params.length}),
    -- The latest run's per-tenant costs, taken out of its (large) inputs once for the whole page.
    billed AS MATERIALIZED (
      SELECT r.inputs -> 'costs' -> 'byTenant' AS by_tenant FROM control.cost_guard_runs r
       WHERE r.period = $5 ORDER BY r.started_at DESC, r.id DESC LIMIT 1)
    SELECT p.id, p.status, p.tier, p.cell_id, coalesce(q.guard_state, 'ok') AS guard_state,
           coalesce(u.agent_minutes, 0)::float8 AS agent_minutes, coalesce(u.api_calls, 0)::float8 AS api_calls,
           (SELECT (b.by_tenant ->> p.id)::float8 FROM billed b) AS billed_usd
      FROM page p
      LEFT JOIN control.quota_state q ON q.tenant_id = p.id
      LEFT JOIN control.usage_months u ON u.month = $4::date AND u.tenant_id = p.id
     ORDER BY p.sort_key ${direction}, p.id ${tieBreak}`;
  const { rows } = await pool.query<{
    id: string;
    status: string;
    tier: string;
    cell_id: string;
    guard_state: string;
    agent_minutes: number;
    api_calls: number;
    billed_usd: number | null;
  }>(sql, params);
  if (fromEnd) rows.reverse();
  const [leased, billed] = await Promise.all([
    Promise.all(rows.map((r) => leases.leasedMinutes(r.id, period))),
    billableUsageByTenant(pool, { ...monthWindow(period), tenantIds: rows.map((r) => r.id) }),
  ]);
  return {
    period,
    total,
    rows: rows.map((r, i) => ({
      id: r.id,
      status: r.status,
      tier: r.tier,
      cell: r.cell_id,
      guardState: r.guard_state,
      standing: usageStanding(
        getTier(r.tier),
        {
          reportedAgentMinutes: r.agent_minutes,
          leasedAgentMinutes: leased[i]!,
          billedAgentMinutes: billed.get(r.id)?.agentMinutes ?? 0,
          apiCalls: r.api_calls,
        },
        now,
      ),
      billedUsd: r.billed_usd,
    })),
  };
}

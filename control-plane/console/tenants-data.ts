import type pg from 'pg';
import { z } from 'zod';
import { TENANT_STATUSES } from '../../tenants/lifecycle/status.ts';
import { getTier, meteredCostUsd, TIER_NAMES, TIERS } from '../../tenants/tiers.ts';

export { TENANT_STATUSES };

/** Columns the tenants table sorts by; each maps to a fixed SQL expression, never to request text. */
const SORTS = {
  id: 't.id',
  status: 't.status',
  tier: 't.tier',
  cell: 't.cell_id',
  guard: "coalesce(q.guard_state, 'ok')",
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
  readonly agentMinutes: number;
  readonly apiCalls: number;
  readonly agentMinutesQuota: number;
  readonly apiCallsQuota: number;
  /** Our metering priced at unit costs; the guard's billed figure when it is higher. */
  readonly costUsd: number;
  readonly billedUsd: number | null;
  readonly budgetUsd: number;
  /** Month-to-date cost run on at the same daily rate to the end of the month. */
  readonly projectedUsd: number;
}

export interface TenantPage {
  readonly rows: TenantRow[];
  readonly total: number;
  readonly period: string;
}

function monthBounds(now: Date): { start: string; next: string; elapsed: number } {
  const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return { start: iso(start), next: iso(next), elapsed: (now.getTime() - start) / (next - start) };
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
 * run in PostgreSQL, and billed cost is read for the page's tenants only, so 10,000 tenants cost
 * the same page time as 100.
 */
export async function tenantPage(pool: pg.Pool, query: TenantQuery, now = new Date()): Promise<TenantPage> {
  const month = monthBounds(now);
  const params: unknown[] = [
    TIERS.map((t) => t.name),
    TIERS.map((t) => t.agentMinutesPerMonth),
    TIERS.map((t) => t.apiCallsPerMonth),
    month.start,
    month.next,
  ];
  const filtered = filterClause(query, params.length);
  params.push(...filtered.params);
  const filter = filtered.sql;
  const needsUsage = query.sort === 'agent-minutes' || query.sort === 'api-calls';
  // Sorting by usage aggregates the month for every tenant; any other sort reads usage for the page only.
  const usageJoin = needsUsage
    ? `JOIN tq ON tq.tier = t.tier
       LEFT JOIN (SELECT tenant_id, sum(agent_minutes)::float8 AS agent_minutes, sum(api_calls)::float8 AS api_calls
                    FROM control.usage WHERE day >= $4::date AND day < $5::date GROUP BY tenant_id) u ON u.tenant_id = t.id`
    : '';
  params.push(query.size, (query.page - 1) * query.size);
  const sql = `
    WITH tq AS (${TIER_QUOTAS_SQL}),
    page AS (
      SELECT t.id, t.status::text AS status, t.tier, t.cell_id, coalesce(q.guard_state, 'ok') AS guard_state
        FROM control.tenants t
        LEFT JOIN control.quota_state q ON q.tenant_id = t.id
        ${usageJoin}
        ${filter}
       ORDER BY ${SORTS[query.sort]} ${query.order === 'desc' ? 'DESC' : 'ASC'}, t.id
       LIMIT $${params.length - 1} OFFSET $${params.length})
    SELECT p.*, coalesce(u.agent_minutes, 0)::float8 AS agent_minutes, coalesce(u.api_calls, 0)::float8 AS api_calls,
           (SELECT (r.inputs -> 'costs' -> 'byTenant' ->> p.id)::float8
              FROM control.cost_guard_runs r WHERE r.period = to_char($4::date, 'YYYY-MM')
             ORDER BY r.started_at DESC, r.id DESC LIMIT 1) AS billed_usd
      FROM page p
      LEFT JOIN LATERAL (SELECT sum(agent_minutes) AS agent_minutes, sum(api_calls) AS api_calls
                           FROM control.usage WHERE tenant_id = p.id AND day >= $4::date AND day < $5::date) u ON true`;
  // Counted apart and at the same time: a window count would make PostgreSQL join and sort every
  // tenant even for a page the primary key index serves directly.
  const counted = filterClause(query, 0);
  const totalPromise = pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM control.tenants t ${counted.sql}`,
    counted.params,
  );
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
  const total = (await totalPromise).rows[0]?.n ?? 0;
  return {
    period: month.start.slice(0, 7),
    total,
    rows: rows.map((r) => {
      const tier = getTier(r.tier);
      const metered = meteredCostUsd({ agentMinutes: r.agent_minutes, apiCalls: r.api_calls });
      const costUsd = Math.max(metered, r.billed_usd ?? 0);
      return {
        id: r.id,
        status: r.status,
        tier: r.tier,
        cell: r.cell_id,
        guardState: r.guard_state,
        agentMinutes: r.agent_minutes,
        apiCalls: r.api_calls,
        agentMinutesQuota: tier.agentMinutesPerMonth,
        apiCallsQuota: tier.apiCallsPerMonth,
        costUsd,
        billedUsd: r.billed_usd,
        budgetUsd: tier.monthlyCostBudgetUsd,
        projectedUsd: month.elapsed > 0 ? costUsd / month.elapsed : costUsd,
      };
    }),
  };
}

import type pg from 'pg';
import { z } from 'zod';
import { billableUsageByTenant, monthWindow } from '../metering/billable-usage.ts';
import { TIER_NAMES } from '../tiers.ts';
import { costInputsSchema } from './costs.ts';
import { GUARD_STATES } from './rules.ts';

const guardState = z.enum(GUARD_STATES);

/** One tenant as the guard saw it when the run started. */
export const tenantInputSchema = z.object({
  id: z.string(),
  tier: z.enum(TIER_NAMES),
  /** Catalog status (active, limited, suspended). */
  status: z.string(),
  /** Guard state as stored, and the period it belongs to. */
  guardState: guardState,
  statePeriod: z.string(),
  pendingState: guardState.nullable(),
  pendingRuns: z.number().int().min(0),
  /** Billable usage this period (tenants/metering: per hour, the larger of reported and leased minutes). */
  agentMinutes: z.number().min(0),
  apiCalls: z.number().min(0),
  /** Expiry of a live override; null when none. */
  overrideExpiresAt: z.iso.datetime().nullable(),
  /** Who set the current catalog status (from the audit trail); null when unknown. */
  statusActor: z.string().nullable(),
});
export type TenantInput = z.infer<typeof tenantInputSchema>;

/** Everything a decision depends on; stored before deciding so any run can be replayed. */
export const guardInputsSchema = z.object({
  /** 2: DAILY costs with the latest day carrying cost; Estimated answers are usable. */
  version: z.literal(2),
  now: z.iso.datetime(),
  period: z.string().regex(/^\d{4}-\d{2}$/),
  costs: costInputsSchema,
  tenants: z.array(tenantInputSchema),
  config: z.object({
    enforcementEnabled: z.boolean(),
    autoSuspend: z.boolean(),
    approveSuspend: z.boolean(),
    maxActionsPerRun: z.number().int().min(0),
    maxActionsPercent: z.number().min(0).max(100),
    maxDataAgeHours: z.number().positive(),
    policy: z.object({
      lines: z.object({ warning: z.number(), limited: z.number(), suspended: z.number() }),
      meteringOnlyMargin: z.number().min(0),
      hysteresis: z.number().min(0),
      confirmations: z.object({
        warning: z.number().int().min(1),
        limited: z.number().int().min(1),
        suspended: z.number().int().min(1),
      }),
    }),
  }),
});
export type GuardInputs = z.infer<typeof guardInputsSchema>;

/** Tenants the guard watches: those that can run work or were stopped by it. */
const WATCHED_STATUSES = ['active', 'limited', 'suspended'];

/** Tenants, their guard state and live overrides in one query; the period's billable usage in a second. */
export async function readTenantInputs(
  db: pg.Pool | pg.PoolClient,
  period: string,
  now: Date,
): Promise<TenantInput[]> {
  const { rows } = await db.query<{
    id: string;
    tier: TenantInput['tier'];
    status: string;
    guard_state: TenantInput['guardState'] | null;
    state_period: string | null;
    pending_state: TenantInput['guardState'] | null;
    pending_runs: number | null;
    override_expires_at: Date | null;
    status_actor: string | null;
  }>(
    `SELECT t.id, t.tier, t.status::text AS status,
            q.guard_state, q.period AS state_period, q.pending_state, q.pending_runs,
            o.expires_at AS override_expires_at,
            (SELECT a.actor FROM control.audit_events a
              WHERE a.tenant_id = t.id AND a.action LIKE 'tenant.%' AND a.to_status = t.status::text
              ORDER BY a.at DESC, a.id DESC LIMIT 1) AS status_actor
       FROM control.tenants t
       LEFT JOIN control.quota_state q ON q.tenant_id = t.id
       LEFT JOIN control.cost_guard_overrides o ON o.tenant_id = t.id AND o.expires_at > $1
      WHERE t.status::text = ANY($2)
      ORDER BY t.id`,
    [now, WATCHED_STATUSES],
  );
  const usage = await billableUsageByTenant(db, monthWindow(period));
  return rows.map((r) => ({
    id: r.id,
    tier: r.tier,
    status: r.status,
    guardState: r.guard_state ?? 'ok',
    statePeriod: r.state_period ?? period,
    pendingState: r.pending_state,
    pendingRuns: r.pending_runs ?? 0,
    agentMinutes: usage.get(r.id)?.agentMinutes ?? 0,
    apiCalls: usage.get(r.id)?.apiCalls ?? 0,
    overrideExpiresAt: r.override_expires_at?.toISOString() ?? null,
    statusActor: r.status_actor,
  }));
}

/** Thrown when a stored run cannot be found or replayed; one line naming the run. */
export class GuardRunError extends Error {
  override readonly name = 'GuardRunError';
}

export async function storeRunInputs(
  db: pg.Pool | pg.PoolClient,
  inputs: GuardInputs,
  mode: 'dry-run' | 'apply',
): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO control.cost_guard_runs (started_at, period, mode, inputs, ce_requests)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [inputs.now, inputs.period, mode, JSON.stringify(inputs), inputs.costs.requests],
  );
  return Number(rows[0]!.id);
}

export async function loadRun(
  db: pg.Pool | pg.PoolClient,
  runId: number,
): Promise<{ inputs: GuardInputs; plan: unknown; mode: string }> {
  const { rows } = await db.query<{ inputs: unknown; plan: unknown; mode: string }>(
    'SELECT inputs, plan, mode FROM control.cost_guard_runs WHERE id = $1',
    [runId],
  );
  const row = rows[0];
  if (!row) throw new GuardRunError(`cost guard run ${runId} does not exist`);
  const parsed = guardInputsSchema.safeParse(row.inputs);
  if (!parsed.success) {
    throw new GuardRunError(
      `cost guard run ${runId} has unreadable inputs: ${parsed.error.issues[0]!.message}`,
    );
  }
  return { inputs: parsed.data, plan: row.plan, mode: row.mode };
}

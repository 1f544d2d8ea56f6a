import { isDeepStrictEqual } from 'node:util';
import type { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { SNSClient } from '@aws-sdk/client-sns';
import type pg from 'pg';
import type pino from 'pino';
import { alarmTopicArn, type EnvironmentConfig } from '../../config/environments.ts';
import { createLogger } from '../../monitors/logger.ts';
import { recordAudit } from '../audit.ts';
import type { CellDirectory } from '../cells.ts';
import type { TenantCluster } from '../kubernetes/cluster.ts';
import {
  limitTenant,
  resumeTenant,
  type SuspensionDeps,
  type SuspensionResult,
  suspendTenant,
} from '../suspension.ts';
import { type FetchCostsOptions, fetchCosts } from './costs.ts';
import { type GuardInputs, loadRun, readTenantInputs, storeRunInputs } from './inputs.ts';
import { notificationKinds, notifyOnce } from './notify.ts';
import { GUARD_ACTOR, type GuardPlan, planRun, type TenantDecision } from './plan.ts';
import { DEFAULT_POLICY, type GuardAction, type GuardPolicy, periodOf } from './rules.ts';

export { GUARD_ACTOR };

export interface CostGuardDeps {
  /** The catalog. */
  readonly pool: pg.Pool;
  /** The cells, where a limit or suspension changes the tenant role. */
  readonly cells: CellDirectory;
  readonly env: EnvironmentConfig;
  /** Tenant manifests directory, re-rendered with pods/jobs 0 on limit. @default - none written */
  readonly manifestsDir?: string;
  /** The cluster whose quotas, annotations and Jobs change (tenants/kubernetes). @default - no cluster touched */
  readonly kube?: TenantCluster;
  /** @default - a client with SDK retries off (the guard counts and bounds its own) */
  readonly ce?: CostExplorerClient;
  /** @default - a default SNS client */
  readonly sns?: SNSClient;
  /** Backoff settings for Cost Explorer. @default - see fetchCosts */
  readonly fetch?: Omit<FetchCostsOptions, 'client'>;
  /** @default DEFAULT_POLICY */
  readonly policy?: GuardPolicy;
  /** @default - the clock */
  readonly now?: () => Date;
  /** @default - pino JSON to stderr */
  readonly log?: pino.Logger;
}

export interface CostGuardOptions {
  /** Act on the plan; without it the run is a dry run on the same code path. */
  readonly apply: boolean;
  /** Allows suspensions when the environment does not auto-suspend. @default false */
  readonly approveSuspend?: boolean;
}

export interface TenantOutcome {
  readonly tenantId: string;
  readonly results: SuspensionResult[];
  readonly notified: string[];
  readonly error?: string;
}

export interface CostGuardResult {
  readonly runId: number;
  readonly mode: 'dry-run' | 'apply';
  readonly plan: GuardPlan;
  /** Tenants acted on or notified (apply only). */
  readonly outcomes: TenantOutcome[];
  readonly failures: number;
}

function defaultLogger(): pino.Logger {
  return createLogger({ name: 'cost-guard' }, 2);
}

const ACTIONS: Record<
  Exclude<GuardAction, 'notify'>,
  (
    deps: SuspensionDeps,
    id: string,
    o: { actor: string; reason: string; evidence?: Record<string, unknown> },
  ) => Promise<SuspensionResult>
> = { limit: limitTenant, suspend: suspendTenant, resume: resumeTenant };

function evidenceOf(decision: TenantDecision, runId: number): Record<string, unknown> {
  return {
    runId,
    budgetUsd: decision.budgetUsd,
    meteredUsd: decision.meteredUsd,
    billedUsd: decision.billedUsd,
    meterRatio: decision.meterRatio,
    billRatio: decision.billRatio,
    target: decision.target,
    pending: decision.pending,
  };
}

function stateChanged(
  decision: TenantDecision,
  input: GuardInputs['tenants'][number],
  period: string,
): boolean {
  return (
    decision.to !== input.guardState ||
    input.statePeriod !== period ||
    decision.pending.state !== input.pendingState ||
    decision.pending.runs !== input.pendingRuns
  );
}

async function actOnTenant(
  deps: CostGuardDeps,
  runId: number,
  inputs: GuardInputs,
  decision: TenantDecision,
  input: GuardInputs['tenants'][number],
  sns: SNSClient,
): Promise<TenantOutcome | null> {
  const kinds = notificationKinds(decision);
  const changed = stateChanged(decision, input, inputs.period);
  if (decision.actions.length === 0 && kinds.length === 0 && !changed) return null;
  const results: SuspensionResult[] = [];
  const evidence = evidenceOf(decision, runId);
  for (const action of decision.actions) {
    if (action === 'notify') continue;
    results.push(
      await ACTIONS[action](deps, decision.tenantId, {
        actor: GUARD_ACTOR,
        reason: decision.reason,
        evidence,
      }),
    );
  }
  if (changed) {
    await deps.pool.query(
      `INSERT INTO control.quota_state (tenant_id, guard_state, period, pending_state, pending_runs)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant_id) DO UPDATE SET guard_state = EXCLUDED.guard_state, period = EXCLUDED.period,
       pending_state = EXCLUDED.pending_state, pending_runs = EXCLUDED.pending_runs, updated_at = now()`,
      [decision.tenantId, decision.to, inputs.period, decision.pending.state, decision.pending.runs],
    );
  }
  if (decision.to !== decision.from) {
    await recordAudit(deps.pool, {
      tenantId: decision.tenantId,
      actor: GUARD_ACTOR,
      action: 'cost-guard.state-changed',
      fromStatus: decision.from,
      toStatus: decision.to,
      reason: decision.reason,
      evidence: { ...evidence, statusChanges: results.filter((r) => r.changed).map((r) => r.toStatus) },
    });
  }
  const notifier = { sns, topicArn: alarmTopicArn(deps.env), db: deps.pool };
  const notified: string[] = [];
  for (const kind of kinds) {
    if (await notifyOnce(notifier, runId, inputs.period, decision, kind)) notified.push(kind);
  }
  if (!changed && results.length === 0 && notified.length === 0) return null;
  return { tenantId: decision.tenantId, results, notified };
}

/**
 * One guard run: snapshot the inputs (costs, usage, states, config) into the catalog, plan from
 * the snapshot alone, and act only when `apply` is set. The dry run takes the same path up to acting.
 */
export async function runCostGuard(deps: CostGuardDeps, options: CostGuardOptions): Promise<CostGuardResult> {
  const log = deps.log ?? defaultLogger();
  const now = (deps.now ?? (() => new Date()))();
  const period = periodOf(now);
  const mode = options.apply ? 'apply' : 'dry-run';
  const costs = await fetchCosts(now, { ...deps.fetch, ...(deps.ce ? { client: deps.ce } : {}) });
  const guard = deps.env.costGuard;
  const inputs: GuardInputs = {
    version: 2,
    now: now.toISOString(),
    period,
    costs,
    tenants: await readTenantInputs(deps.pool, period, now),
    config: {
      ...guard,
      approveSuspend: options.approveSuspend ?? false,
      policy: deps.policy ?? DEFAULT_POLICY,
    },
  };
  const runId = await storeRunInputs(deps.pool, inputs, mode);
  const plan = planRun(inputs);
  await deps.pool.query('UPDATE control.cost_guard_runs SET plan = $2 WHERE id = $1', [
    runId,
    JSON.stringify(plan),
  ]);
  log.info(
    { runId, mode, period, ceRequests: costs.requests, pages: costs.pages, dataProblem: plan.dataProblem },
    'cost guard planned',
  );

  const outcomes: TenantOutcome[] = [];
  let failures = 0;
  // The kill switch: the run is recorded and reported, and nothing is acted on or sent.
  if (options.apply && plan.dataProblem === null && guard.enforcementEnabled) {
    const sns = deps.sns ?? new SNSClient({ region: deps.env.region });
    const byId = new Map(inputs.tenants.map((t) => [t.id, t]));
    for (const decision of plan.tenants) {
      if (decision.hold === 'unknown-data') continue;
      try {
        const outcome = await actOnTenant(deps, runId, inputs, decision, byId.get(decision.tenantId)!, sns);
        if (outcome) outcomes.push(outcome);
      } catch (error) {
        failures++;
        const message = error instanceof Error ? error.message : String(error);
        log.error({ runId, tenantId: decision.tenantId, err: message }, 'cost guard action failed');
        outcomes.push({ tenantId: decision.tenantId, results: [], notified: [], error: message });
      }
    }
  }
  const outcome = plan.dataProblem ?? (failures ? `${failures} tenant(s) failed` : 'ok');
  await deps.pool.query(
    'UPDATE control.cost_guard_runs SET finished_at = now(), outcome = $2 WHERE id = $1',
    [runId, outcome],
  );
  log.info({ runId, mode, acted: outcomes.length, failures }, 'cost guard finished');
  return { runId, mode, plan, outcomes, failures };
}

/** Recomputes a stored run's plan from its stored inputs; never acts. */
export async function replayRun(
  pool: pg.Pool,
  runId: number,
): Promise<{ plan: GuardPlan; storedPlan: unknown; same: boolean }> {
  const { inputs, plan: storedPlan } = await loadRun(pool, runId);
  const plan = planRun(inputs);
  return { plan, storedPlan, same: isDeepStrictEqual(plan, storedPlan) };
}

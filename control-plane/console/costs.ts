import type pg from 'pg';
import type { EnvironmentConfig } from '../../config/environments.ts';
import { GuardRunError } from '../../tenants/cost-guard/inputs.ts';
import { buildCostReport, type CostReport } from '../../tenants/cost-guard/report.ts';

export interface GuardDecision {
  readonly tenantId: string;
  readonly from: string;
  readonly to: string;
  readonly hold: string | null;
  readonly reason: string;
  readonly meteredUsd: number;
  readonly billedUsd: number | null;
  readonly budgetUsd: number;
}

export interface GuardRunRow {
  readonly id: number;
  readonly startedAt: Date;
  readonly mode: string;
  readonly outcome: string | null;
  readonly ceRequests: number;
  readonly dataProblem: string | null;
  /** Tenants whose state changed or whose change was held, with the evidence the guard used. */
  readonly decisions: GuardDecision[];
}

/** The last guard runs; only decisions that changed or held a state, so a 10,000-tenant plan stays small. */
export async function guardRuns(pool: pg.Pool, limit = 10): Promise<GuardRunRow[]> {
  const { rows } = await pool.query<{
    id: string;
    started_at: Date;
    mode: string;
    outcome: string | null;
    ce_requests: number;
    data_problem: string | null;
    decisions: GuardDecision[] | null;
  }>(
    `SELECT id, started_at, mode, outcome, ce_requests, plan ->> 'dataProblem' AS data_problem,
            jsonb_path_query_array(plan, '$.tenants[*] ? (@.from != @.to || @.hold != null)') AS decisions
       FROM control.cost_guard_runs ORDER BY started_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    startedAt: r.started_at,
    mode: r.mode,
    outcome: r.outcome,
    ceRequests: r.ce_requests,
    dataProblem: r.data_problem,
    decisions: (r.decisions ?? []).slice(0, 100),
  }));
}

/** The daily report of the latest run (the same code the e-mail uses); null before the first run. */
export async function latestCostReport(pool: pg.Pool, env: EnvironmentConfig): Promise<CostReport | null> {
  try {
    return await buildCostReport(pool, env);
  } catch (error) {
    if (error instanceof GuardRunError) return null;
    throw error;
  }
}

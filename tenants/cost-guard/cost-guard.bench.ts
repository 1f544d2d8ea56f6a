import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import pg from 'pg';
import pino from 'pino';
import type { BenchFigure } from '../../bench/figure.ts';
import { alarmTopicName, loadEnvironmentConfig } from '../../config/environments.ts';
import { migrateCatalog } from '../catalog/migrate.ts';
import { cellDirectory } from '../cells.ts';
import { startMoto } from '../testing/moto.ts';
import { createTestDatabase } from '../testing/pg.ts';
import { cePage, minutesForBudgetFraction, usdForBudgetFraction } from './fixtures.ts';
import { planRun } from './plan.ts';
import { runCostGuard } from './run.ts';

const TENANTS = 10_000;
const GROUPS_PER_PAGE = 1_000;
const GOAL_SECONDS = 5;
const NOW = new Date('2026-11-24T12:00:00Z');
const TIER = 'pro';

/** Mostly healthy tenants, with a few in each state, as a real month would look. */
function budgetFraction(i: number): number {
  if (i % 1000 === 0) return 2.5;
  if (i % 200 === 0) return 1.5;
  if (i % 50 === 0) return 0.95;
  return 0.1 + (i % 40) / 100;
}

/**
 * Evaluates 10,000 tenants: one Cost Explorer query answered by moto in 10 pages, the catalog read
 * (tenants, usage, overrides), the stored snapshot and the plan; then the same plan alone.
 */
export default async function costGuardBench(): Promise<BenchFigure[]> {
  const moto = await startMoto();
  const db = await createTestDatabase('cost_guard_bench');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  try {
    const client = await pool.connect();
    try {
      await migrateCatalog(client);
    } finally {
      client.release();
    }
    const ids = Array.from({ length: TENANTS }, (_, i) => `bench-${String(i + 1).padStart(5, '0')}`);
    const fractions = ids.map((_, i) => budgetFraction(i + 1));
    await pool.query(
      `INSERT INTO control.tenants (id, tier, status, cell_id)
       SELECT id, $2, 'active', 'cell-1' FROM unnest($1::text[]) AS id`,
      [ids, TIER],
    );
    await pool.query(
      `WITH u AS (SELECT * FROM unnest($1::text[], $2::numeric[]) AS u(id, minutes)),
            daily AS (INSERT INTO control.usage (tenant_id, day, agent_minutes)
                      SELECT id, '2026-11-20', minutes FROM u RETURNING 1)
       INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes)
       SELECT id, '2026-11-20T00:00:00Z', minutes FROM u`,
      [ids, fractions.map((f) => minutesForBudgetFraction(TIER, f))],
    );
    const pages = [];
    for (let start = 0; start < TENANTS; start += GROUPS_PER_PAGE) {
      const slice = ids.slice(start, start + GROUPS_PER_PAGE);
      const last = start + GROUPS_PER_PAGE >= TENANTS;
      const groups = slice.map((id, j) => [id, usdForBudgetFraction(TIER, fractions[start + j]!)] as const);
      pages.push(
        cePage(last ? [...groups, [null, '12.5']] : groups, last ? {} : { nextPageToken: `p${start}` }),
      );
    }
    await moto.seedCostAndUsage(pages);
    await new SNSClient({}).send(
      new CreateTopicCommand({ Name: alarmTopicName(loadEnvironmentConfig('dev')) }),
    );

    const deps = {
      pool,
      // A dry run changes no tenant role, so no cell is opened.
      cells: cellDirectory([]),
      env: loadEnvironmentConfig('dev'),
      now: () => NOW,
      log: pino({ level: 'silent' }),
    };
    const started = performance.now();
    const result = await runCostGuard(deps, { apply: false });
    const seconds = (performance.now() - started) / 1000;

    const { rows } = await pool.query('SELECT inputs FROM control.cost_guard_runs WHERE id = $1', [
      result.runId,
    ]);
    const planStarted = performance.now();
    planRun(rows[0].inputs);
    const planMs = performance.now() - planStarted;

    const states: Record<string, number> = {};
    for (const t of result.plan.tenants) states[t.target] = (states[t.target] ?? 0) + 1;
    return [
      {
        figure: `cost guard dry run over ${TENANTS} tenants (CE pages from moto, catalog read, snapshot, plan)`,
        value: seconds,
        unit: 's',
        goal: `<= ${GOAL_SECONDS} s`,
        pass: seconds <= GOAL_SECONDS && result.plan.dataProblem === null,
        detail: { states, cap: result.plan.cap, dataProblem: result.plan.dataProblem },
      },
      {
        figure: 'Cost Explorer requests per run (= pages of one query)',
        value: result.plan.ceRequests,
        unit: 'requests',
        goal: `= ${pages.length} pages`,
        pass: result.plan.ceRequests === pages.length,
        detail: { costUsd: result.plan.ceRequests * 0.01 },
      },
      { figure: `plan alone for ${TENANTS} tenants (pure)`, value: planMs, unit: 'ms' },
    ];
  } finally {
    await pool.end();
    await db.drop();
    await moto.stop();
  }
}

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import type { EnvironmentConfig } from '../../config/environments.ts';
import type { CellDirectory } from '../cells.ts';
import type { MotoServer } from '../testing/moto.ts';
import { cePage, minutesForBudgetFraction, recordUsage, usdForBudgetFraction } from './fixtures.ts';
import { formatPlan } from './format.ts';
import { buildCostReport, renderCostReportHtml, renderCostReportText } from './report.ts';
import { runCostGuard } from './run.ts';

export interface CostGuardDemoOptions {
  readonly pool: pg.Pool;
  readonly cells: CellDirectory;
  readonly env: EnvironmentConfig;
  /** The emulated AWS the demo seeds with month-to-date costs. */
  readonly aws: MotoServer;
  /** Tenant id and the share of its tier budget it has used, metered and billed alike. */
  readonly tenants: ReadonlyArray<{
    readonly id: string;
    readonly tier: string;
    readonly budgetFraction: number;
  }>;
  /** Where cost-report.html and cost-report.txt are written. */
  readonly outDir: string;
}

/**
 * Seeds usage and Cost Explorer so each demo tenant sits at a chosen share of its budget, runs the guard
 * as a dry run (the default, same code path as --apply) and writes the daily cost report.
 */
export async function runCostGuardDemo(options: CostGuardDemoOptions) {
  const now = new Date();
  const today = now.toISOString().slice(0, 10);
  const monthStart = `${today.slice(0, 7)}-01`;
  const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1))
    .toISOString()
    .slice(0, 10);
  for (const t of options.tenants) {
    await recordUsage(options.pool, t.id, today, minutesForBudgetFraction(t.tier, t.budgetFraction));
  }
  await options.aws.seedCostAndUsage([
    cePage(
      [
        ...options.tenants.map((t) => [t.id, usdForBudgetFraction(t.tier, t.budgetFraction)] as const),
        [null, '3.1400000000'],
      ],
      { start: monthStart, end: tomorrow },
    ),
  ]);
  const result = await runCostGuard(
    {
      pool: options.pool,
      cells: options.cells,
      env: options.env,
      log: pino({ level: 'warn' }, pino.destination(2)),
    },
    { apply: false },
  );
  const report = await buildCostReport(options.pool, options.env, { runId: result.runId });
  await mkdir(options.outDir, { recursive: true });
  const htmlFile = path.join(options.outDir, 'cost-report.html');
  const text = renderCostReportText(report);
  await writeFile(htmlFile, renderCostReportHtml(report));
  await writeFile(path.join(options.outDir, 'cost-report.txt'), `${text}\n`);
  return {
    plan: formatPlan(result.plan, { mode: result.mode, runId: result.runId, all: true }),
    report: text,
    htmlFile,
  };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { BenchFigure } from '../bench/figure.ts';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { moveTenant } from './move.ts';
import { createTenant, type ProvisionerDeps } from './provisioner.ts';
import { createCatalogDatabase, dropRoles } from './testing/pg.ts';

const ROWS = Number(process.env.BENCH_MOVE_ROWS ?? 10_000);

/** Moves one tenant holding ROWS rows (spread over its four tables) from cell-1 to cell-2. */
export default async function moveBench(): Promise<BenchFigure[]> {
  const id = `bmove-${Math.random().toString(36).slice(2, 7)}`;
  const { db, pool, cells } = await createCatalogDatabase('bench_move', 4, { cells: 2 });
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-move-'));
  try {
    const deps: ProvisionerDeps = {
      pool,
      cells,
      env: loadEnvironmentConfig('dev'),
      manifestsDir: scratch,
      aws: { enabled: false },
    };
    await createTenant(deps, { id, tier: 'pro', actor: 'bench' });
    const s = pg.escapeIdentifier(id);
    const quarter = Math.ceil(ROWS / 4);
    await cells
      .cell('cell-1')
      .pool.query(
        [
          `INSERT INTO ${s}.agents (name, model, config) SELECT 'agent-' || i, 'model-' || (i % 7), jsonb_build_object('i', i) FROM generate_series(1, ${quarter}) i`,
          `INSERT INTO ${s}.tasks (agent_id, input) SELECT id, jsonb_build_object('goal', 'task ' || id) FROM ${s}.agents`,
          `INSERT INTO ${s}.runs (task_id, status, agent_minutes) SELECT id, 'succeeded', 1.5 FROM ${s}.tasks`,
          `INSERT INTO ${s}.events (run_id, kind, payload) SELECT id, 'log', jsonb_build_object('line', id) FROM ${s}.runs`,
        ].join(';\n'),
      );
    const load = loadavg()[0]!;
    const started = performance.now();
    const result = await moveTenant(deps, id, {
      to: 'cell-2',
      actor: 'bench',
      workDir: path.join(scratch, 'moves'),
    });
    const ms = performance.now() - started;
    const rows = Object.values(result.tables).reduce((sum, t) => sum + t.rows, 0);
    return [
      {
        figure: `move one tenant with ${rows} rows between cells (suspend, dump, restore, verify, switch, drop, resume)`,
        value: Number((ms / 1000).toFixed(2)),
        unit: 's',
        goal: '<= 5 s',
        pass: ms <= 5_000,
        detail: {
          stepsMs: Object.fromEntries(result.steps.map((step) => [step.step, step.ms])),
          loadAverage1m: Number(load.toFixed(2)),
        },
      },
    ];
  } finally {
    await pool.end();
    await db.drop();
    await dropRoles([id]);
    await rm(scratch, { recursive: true, force: true });
  }
}

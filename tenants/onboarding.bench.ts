import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { type BenchFigure, percentile } from '../bench/figure.ts';
import { settleFilesystem } from '../bench/settle.ts';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { createTenants } from './bulk-onboarding.ts';
import type { CellDirectory } from './cells.ts';
import { createTenant, type ProvisionerDeps } from './provisioner.ts';
import { applyTenantDatabase, inspectTenantDatabase, recordInCatalog } from './tenant-database.ts';
import { startMoto } from './testing/moto.ts';
import { createCatalogDatabase, dropRoles } from './testing/pg.ts';
import { getTier, TIER_NAMES } from './tiers.ts';

const SAMPLES = Number(process.env.BENCH_ONBOARDING_SAMPLES ?? 60);
const BULK = Number(process.env.BENCH_ONBOARDING_BULK ?? 1000);
const POPULATED = Number(process.env.BENCH_ONBOARDING_POPULATED ?? 5000);
const STREAMS = 4;

const ms = (n: number) => Number(n.toFixed(1));

/** Busy CPU milliseconds of the whole machine (every process, PostgreSQL included) since boot. */
function machineBusyMs(): number {
  return cpus().reduce((sum, { times }) => sum + times.user + times.nice + times.sys + times.irq, 0);
}

/** Onboards `ids` through `tenant create-many`'s code path with `streams` at once; returns the wall time in ms. */
async function bulk(deps: ProvisionerDeps, ids: readonly string[], streams: number): Promise<number> {
  const entries = ids.map((id, i) => ({
    id,
    tier: TIER_NAMES[(i + 1) % TIER_NAMES.length]!,
    where: `entry ${i + 1}`,
  }));
  const result = await createTenants(deps, entries, { actor: 'bench', concurrency: streams });
  if (result.failed.length > 0)
    throw new Error(`bulk onboarding: ${result.failed.length} failed, first: ${result.failed[0]!.error}`);
  return result.ms;
}

/**
 * Existing tenants for the populated figure: real catalog rows, roles, schemas and tables (what makes a
 * catalog big), without readiness logins or manifests, so that 5,000 fit in the bench's time budget.
 */
async function fill(
  pool: pg.Pool,
  cells: CellDirectory,
  ids: readonly string[],
  streams: number,
): Promise<number> {
  const started = performance.now();
  const tier = getTier('free');
  let next = 0;
  await Promise.all(
    Array.from({ length: streams }, async (_, stream) => {
      // Each stream fills one cell, as placement would spread them.
      const cellId = cells.ids[stream % cells.ids.length]!;
      const client = await pool.connect();
      const cell = await cells.cell(cellId).pool.connect();
      try {
        for (const c of [client, cell]) await c.query('SET synchronous_commit = off');
        while (next < ids.length) {
          const id = ids[next++]!;
          await client.query(
            `INSERT INTO control.tenants (id, tier, status, cell_id, hostname)
             VALUES ($1, $2, 'active', $3, $1 || '.bench')`,
            [id, tier.name, cellId],
          );
          await applyTenantDatabase(cell, id, tier, await inspectTenantDatabase(cell, id, null), {
            record: recordInCatalog(client, id),
          });
        }
      } finally {
        for (const c of [client, cell]) await c.query('RESET synchronous_commit');
        client.release();
        cell.release();
      }
    }),
  );
  return performance.now() - started;
}

/** One tenant at a time: the latency an operator sees. */
async function sequential(deps: ProvisionerDeps, ids: readonly string[]): Promise<number[]> {
  const totals: number[] = [];
  for (const id of ids) {
    const result = await createTenant(deps, { id, tier: 'pro', actor: 'bench' });
    totals.push(result.timings.total!);
  }
  return totals;
}

export default async function onboardingBench(): Promise<BenchFigure[]> {
  // Onboarding creates ~26 files per tenant: measure it, not the file deletions of the benchmark before.
  const settledMs = await settleFilesystem();
  const run = Math.random().toString(36).slice(2, 7);
  const ids: string[] = [];
  const idsFor = (label: string, count: number) => {
    const made = Array.from({ length: count }, (_, i) => `b${run}-${label}${i}`);
    ids.push(...made);
    return made;
  };
  // Room for every tenant the bench makes: two cells, as in scale-out.
  const {
    db: database,
    pool,
    cells,
  } = await createCatalogDatabase('bench_onboarding', STREAMS * 2, {
    cells: 2,
  });
  const manifestsDir = await mkdtemp(path.join(tmpdir(), 'bench-manifests-'));
  const deps: ProvisionerDeps = {
    pool,
    cells,
    env: loadEnvironmentConfig('dev'),
    manifestsDir,
    aws: { enabled: false },
  };
  const figures: BenchFigure[] = [];
  try {
    await sequential(deps, idsFor('w', 5));
    const empty = await sequential(deps, idsFor('e', SAMPLES));
    const p95Empty = percentile(empty, 95);
    figures.push({
      figure: 'onboard one tenant, DB + k8s render + key (p95, near-empty catalog)',
      value: ms(p95Empty),
      unit: 'ms',
      goal: '<= 75 ms',
      pass: p95Empty <= 75,
      detail: { p50: ms(percentile(empty, 50)), samples: SAMPLES, loadAverage1m: ms(loadavg()[0]!) },
    });

    const loadBefore = loadavg()[0]!;
    const busyBefore = machineBusyMs();
    const bulkMs = await bulk(deps, idsFor('k', BULK), STREAMS);
    const busyMs = machineBusyMs() - busyBefore;
    figures.push({
      figure: `onboard ${BULK} tenants in bulk (create-many, ${STREAMS} at once)`,
      value: ms(bulkMs / 1000),
      unit: 's',
      goal: '<= 16 s',
      pass: bulkMs <= 16_000,
      detail: {
        perSecond: ms(BULK / (bulkMs / 1000)),
        // CPU bound on 2 cores: busy core-ms per tenant, and the share of the machine that was busy.
        machineCpuMsPerTenant: ms(busyMs / BULK),
        machineBusyShare: Number((busyMs / (bulkMs * cpus().length)).toFixed(2)),
        loadAverage1mBefore: ms(loadBefore),
        loadAverage1m: ms(loadavg()[0]!),
        settledFilesystemMs: settledMs,
      },
    });

    const existing = 5 + SAMPLES + BULK;
    const fillMs = await fill(pool, cells, idsFor('f', Math.max(0, POPULATED - existing)), STREAMS);
    const populated = await sequential(deps, idsFor('p', SAMPLES));
    const p95Populated = percentile(populated, 95);
    figures.push({
      figure: `onboard one tenant, p95 with ${POPULATED} tenants vs near-empty`,
      value: Number((p95Populated / p95Empty).toFixed(2)),
      unit: 'x',
      goal: '<= 1.3x',
      pass: p95Populated / p95Empty <= 1.3,
      detail: {
        p95Populated: ms(p95Populated),
        p50Populated: ms(percentile(populated, 50)),
        p95Empty: ms(p95Empty),
        fillSeconds: ms(fillMs / 1000),
        // The raw DDL (catalog row + role + schema + tables, no readiness, key or manifests), same streams.
        fillPerSecond: ms(Math.max(0, POPULATED - existing) / (fillMs / 1000)),
      },
    });

    const moto = await startMoto();
    try {
      const withAws = { ...deps, aws: { enabled: true } };
      const awsResults = [];
      for (const id of idsFor('a', 20))
        awsResults.push(await createTenant(withAws, { id, tier: 'pro', actor: 'bench' }));
      const awsMs = awsResults.map((r) => r.timings.budget ?? 0);
      figures.push({
        figure: 'AWS step (budget) against moto, p95',
        value: ms(percentile(awsMs, 95)),
        unit: 'ms',
        detail: {
          p50: ms(percentile(awsMs, 50)),
          totalP95: ms(
            percentile(
              awsResults.map((r) => r.timings.total!),
              95,
            ),
          ),
        },
      });
    } finally {
      await moto.stop();
    }
  } finally {
    await pool.end();
    await database.drop();
    await dropRoles(ids);
    await rm(manifestsDir, { recursive: true, force: true });
  }
  return figures;
}

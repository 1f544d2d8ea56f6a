import type { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { Logger } from 'pino';
import {
  describeReplicationGroup,
  primaryOf,
  testFailover,
  UnsupportedOperationError,
  waitForNewPrimary,
} from './cache.ts';
import { type DrillResource, deleteDrillResources, findDrillResources } from './cleanup.ts';
import { DrillError, DrillInterruptedError, sleep } from './errors.ts';
import { type DrillName, type DrillOptions, drillResourceId } from './options.ts';
import {
  findOutages,
  Prober,
  type ProbeTarget,
  postgresProbeTarget,
  redisProbeTarget,
  rtoSeconds,
  writeMarker,
} from './prober.ts';
import {
  clusterWriter,
  createSnapshot,
  type DbInstance,
  drillTags,
  failoverCluster,
  failoverInstance,
  requireInstance,
  restoreFromSnapshot,
  restoreToPointInTime,
  type WaitOptions,
  waitForInstanceAvailable,
  waitForSnapshotAvailable,
} from './rds.ts';
import { DrillRecorder, type DrillReport } from './report.ts';
import {
  collectInventory,
  collectRestoredInventory,
  compareInventories,
  type DatabaseInventory,
  listVerifiedSchemas,
  restoredDatabaseUrl,
  summarizeVerification,
  withClient,
} from './verify.ts';

/** What a drill talks to; tests pass moto-backed or mocked clients. */
export interface DrillDeps {
  readonly rds: RDSClient;
  readonly cache: ElastiCacheClient;
  readonly log: Logger;
  /** Aborted on SIGINT: waits stop, and cleanup still runs. */
  readonly signal?: AbortSignal;
  /** Receives one human progress line per step. */
  readonly progress?: (line: string) => void;
}

interface RunContext {
  readonly o: DrillOptions;
  readonly deps: DrillDeps;
  readonly rec: DrillRecorder;
  /** Resources this run asked AWS to create, recorded before the call so a lost response still gets cleaned. */
  readonly created: DrillResource[];
  readonly wait: WaitOptions;
}

function targetsFor(name: DrillName, o: DrillOptions): { rtoSeconds: number; rpoSeconds?: number } {
  const d = o.config.drills;
  if (name === 'pitr') return { rtoSeconds: d.restoreRtoSeconds, rpoSeconds: d.rpoSeconds };
  if (name === 'snapshot-restore') return { rtoSeconds: d.restoreRtoSeconds };
  return { rtoSeconds: d.failoverRtoSeconds };
}

type DrillBody = (ctx: RunContext, targets: { rtoSeconds: number }) => Promise<void>;

/** Every drill by name; a name that is not here is refused before anything runs. */
const DRILLS: Readonly<Record<DrillName, DrillBody>> = {
  'rds-failover': (ctx, t) => rdsFailover(ctx, t.rtoSeconds),
  'snapshot-restore': (ctx, t) => snapshotRestore(ctx, t.rtoSeconds),
  pitr: (ctx, t) => pitr(ctx, t.rtoSeconds, ctx.o.config.drills.rpoSeconds),
  'cache-failover': (ctx, t) => cacheFailover(ctx, t.rtoSeconds),
};

function drillBody(name: string): DrillBody {
  if (!Object.hasOwn(DRILLS, name)) {
    throw new DrillError(`unknown drill '${name}': expected one of ${Object.keys(DRILLS).join(', ')}`);
  }
  return DRILLS[name as DrillName];
}

/** Runs one drill and always cleans up what it created; never throws for expected failures, the report says. */
export async function runDrill(name: DrillName, o: DrillOptions, deps: DrillDeps): Promise<DrillReport> {
  const body = drillBody(name);
  const rec = new DrillRecorder(deps.log.child({ drill: name, runId: o.runId }), deps.progress);
  const targets = targetsFor(name, o);
  const timeoutSeconds = o.timeoutSeconds ?? 2 * targets.rtoSeconds + o.observeSeconds;
  const ctx: RunContext = {
    o,
    deps,
    rec,
    created: [],
    wait: {
      pollIntervalMs: o.pollIntervalMs,
      deadline: Date.now() + timeoutSeconds * 1000,
      signal: deps.signal,
    },
  };
  rec.step(`drill ${name} started`, `env ${o.config.name}, run ${o.runId}, timeout ${timeoutSeconds} s`);
  let error: string | undefined;
  let interrupted = false;
  let cleanup = { deleted: [] as string[], failed: [] as string[] };
  try {
    await body(ctx, targets);
  } catch (caught) {
    if (!isExpectedFailure(caught)) throw caught;
    error = (caught as Error).message;
    interrupted = caught instanceof DrillInterruptedError;
    rec.step(interrupted ? 'drill interrupted' : 'drill failed', error);
  } finally {
    cleanup = await cleanUp(ctx);
  }
  const finishedAt = new Date();
  const passed =
    error === undefined &&
    rec.checks.length > 0 &&
    rec.checks.every((c) => c.passed) &&
    cleanup.failed.length === 0;
  rec.step(`drill ${name} ${passed ? 'passed' : 'failed'}`);
  return {
    drill: name,
    env: o.config.name,
    runId: o.runId,
    startedAt: rec.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - rec.startedAt.getTime(),
    passed,
    ...(error === undefined ? {} : { error }),
    interrupted,
    targets,
    measurements: rec.measurements,
    checks: rec.checks,
    timeline: rec.timeline,
    cleanup,
    notes: rec.notes,
  };
}

/**
 * Drill errors, AWS service errors (access denied, throttling, invalid state) and connection or SQL errors
 * (they carry a string `code`) end the drill with a report; anything else is a bug and keeps its stack.
 */
function isExpectedFailure(error: unknown): boolean {
  if (error instanceof DrillError) return true;
  if (typeof error !== 'object' || error === null) return false;
  return '$metadata' in error || typeof (error as { code?: unknown }).code === 'string';
}

/** How long cleanup waits for a resource RDS will not delete yet (a restore that is still backing up). */
const CLEANUP_RETRY_MS = 20 * 60_000;

async function cleanUp(ctx: RunContext): Promise<{ deleted: string[]; failed: string[] }> {
  const { rds, log } = ctx.deps;
  const byKey = new Map(ctx.created.map((r) => [`${r.kind}/${r.id}`, r]));
  try {
    for (const r of await findDrillResources(rds, ctx.o.config.name, ctx.o.runId))
      byKey.set(`${r.kind}/${r.id}`, r);
  } catch (error) {
    ctx.rec.note(
      `could not list tagged drill resources: ${(error as Error).message}; run 'dr-drill cleanup'`,
    );
  }
  if (byKey.size === 0) return { deleted: [], failed: [] };
  ctx.rec.step('cleanup started', [...byKey.keys()].join(', '));
  const result = await deleteDrillResources(
    rds,
    [...byKey.values()],
    (resource, error) => log.error({ resource, err: error }, 'cleanup failed'),
    { retryUntil: Date.now() + CLEANUP_RETRY_MS, pollIntervalMs: ctx.o.pollIntervalMs },
  );
  ctx.rec.step('cleanup finished', `${result.deleted.length} deleted, ${result.failed.length} failed`);
  if (result.failed.length > 0) {
    ctx.rec.note(`leftovers remain; run: npm run dr-drill -- cleanup --env ${ctx.o.config.name}`);
  }
  return result;
}

function requireDatabaseUrl(o: DrillOptions): string {
  if (!o.databaseUrl) {
    throw new DrillError("no source database: pass '--database-url <url>' or set DATABASE_URL");
  }
  return o.databaseUrl;
}

function checkTarget(rec: DrillRecorder, label: string, value: number | undefined, target: number): void {
  rec.check(
    `${label} <= ${target} s`,
    value !== undefined && value <= target,
    value === undefined ? `${label} not measured` : `${label} ${value.toFixed(1)} s, target ${target} s`,
  );
}

/** Starts a prober, waits for a first successful write, runs `act`, then observes until writes recover. */
async function withProber(
  ctx: RunContext,
  target: ProbeTarget,
  what: string,
  act: () => Promise<void>,
): Promise<number | undefined> {
  const { o, rec } = ctx;
  const prober = new Prober(target, { intervalMs: o.probeIntervalMs });
  let inOutage = false;
  prober.onSample((s) => {
    if (!s.ok && !inOutage) rec.step(`${what} write failed`, `${new Date(s.at).toISOString()}: ${s.error}`);
    if (s.ok && inOutage) rec.step(`${what} write succeeded again`, new Date(s.at).toISOString());
    inOutage = !s.ok;
  });
  prober.start();
  let samples: readonly { ok: boolean }[] = [];
  let actStartedAt = Number.POSITIVE_INFINITY;
  // a healthy endpoint answers within a few attempts; failing over one that never did would prove nothing
  const baselineDeadline = Math.min(
    ctx.wait.deadline,
    Date.now() + 10 * o.probeIntervalMs + o.probeTimeoutMs,
  );
  try {
    while (!prober.samples.some((s) => s.ok)) {
      if (Date.now() > baselineDeadline) {
        const last = prober.samples.at(-1) as { error?: string } | undefined;
        throw new DrillError(
          `the ${what} prober never wrote successfully before the failover: ${last?.error ?? 'no attempt'}`,
        );
      }
      await sleep(Math.min(o.probeIntervalMs, 100), ctx.deps.signal, 'baseline write');
    }
    rec.step(`${what} prober writing`, `every ${o.probeIntervalMs} ms`);
    actStartedAt = Date.now();
    await act();
    const observeUntil = Date.now() + o.observeSeconds * 1000;
    while (Date.now() < observeUntil || prober.inOutage) {
      if (Date.now() > ctx.wait.deadline) {
        rec.step(
          'timeout while observing',
          prober.inOutage ? 'writes still failing' : 'observation cut short',
        );
        break;
      }
      await sleep(Math.min(o.probeIntervalMs, 250), ctx.deps.signal, 'observing the prober');
    }
  } finally {
    samples = await prober.stop();
  }
  const all = prober.samples;
  const outages = findOutages(all);
  // a blip before the failover was requested is reported as an outage but is not the failover's RTO
  const rto = rtoSeconds(all.filter((s) => s.at >= actStartedAt));
  rec.measurements.probeAttempts = samples.length;
  rec.measurements.probeFailures = all.filter((s) => !s.ok).length;
  rec.measurements.outages = outages.map((x) => ({
    startedAt: new Date(x.startedAt).toISOString(),
    endedAt: x.endedAt === undefined ? null : new Date(x.endedAt).toISOString(),
    failedAttempts: x.failedAttempts,
    firstError: x.firstError,
  }));
  if (outages.length === 0) {
    rec.note(
      `no ${what} write failed: the failover was shorter than the probe interval, or nothing failed over (moto accepts a failover and changes nothing)`,
    );
  }
  rec.check(
    `${what} writes recovered`,
    rto !== undefined,
    rto === undefined ? 'writes were still failing when the drill stopped' : `${outages.length} outage(s)`,
  );
  return rto;
}

async function rdsFailover(ctx: RunContext, rtoTarget: number): Promise<void> {
  const { o, rec, deps } = ctx;
  const databaseUrl = requireDatabaseUrl(o);
  let before: DbInstance | undefined;
  let writerBefore: string | undefined;
  if (o.topology === 'multi-az-instance') {
    before = await requireInstance(deps.rds, o.dbInstance);
    if (!before.MultiAZ) {
      throw new DrillError(
        `DB instance '${o.dbInstance}' is not Multi-AZ: a forced failover would be a plain reboot`,
      );
    }
    rec.step(
      'source described',
      `${o.dbInstance}: ${before.DBInstanceStatus}, primary in ${before.AvailabilityZone ?? '?'}`,
    );
  } else {
    writerBefore = await clusterWriter(deps.rds, o.dbCluster);
    rec.step('source described', `${o.dbCluster}: writer ${writerBefore}`);
  }
  const rto = await withProber(
    ctx,
    postgresProbeTarget(databaseUrl, o.runId, o.probeTimeoutMs),
    'database',
    async () => {
      if (before) {
        await failoverInstance(deps.rds, before);
        rec.step('failover requested', `RebootDBInstance ${o.dbInstance} ForceFailover=true`);
        await sleep(o.pollIntervalMs, deps.signal, 'failover');
        const after = await waitForInstanceAvailable(deps.rds, o.dbInstance, ctx.wait);
        rec.step('instance available', `primary in ${after.AvailabilityZone ?? '?'}`);
        rec.measurements.primaryAzBefore = before.AvailabilityZone;
        rec.measurements.primaryAzAfter = after.AvailabilityZone;
        if (after.AvailabilityZone === before.AvailabilityZone) {
          rec.note(
            `primary AZ unchanged (${after.AvailabilityZone}): on AWS a Multi-AZ failover moves it; moto accepts ForceFailover and changes nothing`,
          );
        }
      } else {
        await failoverCluster(deps.rds, o.dbCluster);
        rec.step('failover requested', `FailoverDBCluster ${o.dbCluster}`);
        let writer = writerBefore;
        while (writer === writerBefore) {
          if (Date.now() > ctx.wait.deadline) break;
          await sleep(o.pollIntervalMs, deps.signal, 'failover');
          writer = await clusterWriter(deps.rds, o.dbCluster);
        }
        rec.check('cluster writer moved', writer !== writerBefore, `${writerBefore} -> ${writer}`);
      }
    },
  );
  rec.measurements.rtoSeconds = rto;
  checkTarget(rec, 'failover RTO', rto, rtoTarget);
}

async function captureSource(
  ctx: RunContext,
  databaseUrl: string,
): Promise<{ schemas: string[]; inventory: DatabaseInventory }> {
  const result = await withClient(databaseUrl, ctx.o.probeTimeoutMs * 5, async (client) => {
    const schemas = await listVerifiedSchemas(client);
    return { schemas, inventory: await collectInventory(client, schemas) };
  });
  const summary = summarizeVerification(result.inventory, []);
  ctx.rec.step(
    'source inventory taken',
    `${summary.schemas} schemas, ${summary.tables} tables, ${summary.rows} rows`,
  );
  return result;
}

/** Connects to the restored database (retrying while DNS and the listener come up) and compares inventories. */
async function verifyRestored(
  ctx: RunContext,
  databaseUrl: string,
  restored: DbInstance,
  source: { schemas: string[]; inventory: DatabaseInventory },
): Promise<void> {
  const { o, rec } = ctx;
  let url = o.verifyDatabaseUrl;
  if (!url) {
    if (!restored.Endpoint)
      throw new DrillError(`restored instance '${restored.DBInstanceIdentifier}' has no endpoint`);
    url = restoredDatabaseUrl(databaseUrl, {
      address: restored.Endpoint.Address,
      port: restored.Endpoint.Port,
    });
  } else {
    rec.note(
      'verification used --verify-database-url instead of the restored endpoint (local runs: moto endpoints are fake)',
    );
  }
  const shown = new URL(url);
  shown.password = '';
  rec.step('verifying restored data', `${shown.host}${shown.pathname}`);
  let inventory: DatabaseInventory | undefined;
  let lastError = '';
  while (!inventory) {
    try {
      inventory = await withClient(url, o.probeTimeoutMs * 5, (client) =>
        collectRestoredInventory(client, source.schemas),
      );
    } catch (error) {
      lastError = (error as Error).message;
      if (Date.now() > ctx.wait.deadline)
        throw new DrillError(`cannot connect to the restored database: ${lastError}`);
      await sleep(o.pollIntervalMs, ctx.deps.signal, 'connecting to the restored database');
    }
  }
  const problems = compareInventories(source.inventory, inventory, o.rowCountTolerancePercent);
  const summary = summarizeVerification(source.inventory, problems);
  rec.measurements.verification = summary;
  rec.check(
    'restored data matches the source',
    problems.length === 0,
    problems.length === 0
      ? `${summary.schemas} schemas, ${summary.tables} tables, ${summary.rows} rows`
      : `${problems.length} problem(s): ${problems
          .slice(0, 5)
          .map((p) => p.detail)
          .join('; ')}${problems.length > 5 ? '; …' : ''}`,
  );
}

async function snapshotRestore(ctx: RunContext, rtoTarget: number): Promise<void> {
  const { o, rec, deps } = ctx;
  const databaseUrl = requireDatabaseUrl(requireInstanceTopology(o, 'snapshot-restore'));
  const source = await requireInstance(deps.rds, o.dbInstance);
  rec.step('source described', `${o.dbInstance}: ${source.DBInstanceStatus}`);
  const captured = await captureSource(ctx, databaseUrl);
  const id = drillResourceId(o.config.name, o.runId, 'restore');
  const tags = drillTags(o.runId, o.config.name);
  ctx.created.push({ kind: 'db-snapshot', id, runId: o.runId, status: 'requested' });
  await createSnapshot(deps.rds, o.dbInstance, id, tags);
  rec.step('snapshot requested', id);
  await waitForSnapshotAvailable(deps.rds, id, ctx.wait);
  rec.step('snapshot available', id);
  ctx.created.push({ kind: 'db-instance', id, runId: o.runId, status: 'requested' });
  await restoreFromSnapshot(deps.rds, source, id, id, tags);
  rec.step('restore requested', `${id} from snapshot ${id}`);
  const rto = await verifyRestoredAndMeasure(ctx, id, databaseUrl, captured);
  checkTarget(rec, 'restore RTO', rto, rtoTarget);
}

async function pitr(ctx: RunContext, rtoTarget: number, rpoTarget: number): Promise<void> {
  const { o, rec, deps } = ctx;
  const databaseUrl = requireDatabaseUrl(requireInstanceTopology(o, 'pitr'));
  const first = await requireInstance(deps.rds, o.dbInstance);
  if (!first.BackupRetentionPeriod) {
    throw new DrillError(
      `DB instance '${o.dbInstance}' has automated backups disabled (BackupRetentionPeriod 0)`,
    );
  }
  const captured = await captureSource(ctx, databaseUrl);
  const source = await requireInstance(deps.rds, o.dbInstance);
  const restorePoint = source.LatestRestorableTime;
  if (!restorePoint) throw new DrillError(`DB instance '${o.dbInstance}' reports no LatestRestorableTime`);
  const lastWrite = await withClient(databaseUrl, o.probeTimeoutMs * 5, (client) =>
    writeMarker(client, o.runId, 0),
  );
  const rpo = Math.max(0, (lastWrite.getTime() - restorePoint.getTime()) / 1000);
  rec.measurements.restorePoint = restorePoint.toISOString();
  rec.measurements.sourceLastWriteAt = lastWrite.toISOString();
  rec.measurements.rpoSeconds = rpo;
  rec.step(
    'latest restorable time',
    `${restorePoint.toISOString()}; source last write ${lastWrite.toISOString()}`,
  );
  const id = drillResourceId(o.config.name, o.runId, 'pitr');
  ctx.created.push({ kind: 'db-instance', id, runId: o.runId, status: 'requested' });
  await restoreToPointInTime(deps.rds, source, restorePoint, id, drillTags(o.runId, o.config.name));
  rec.step('point-in-time restore requested', `${id} at ${restorePoint.toISOString()}`);
  const rto = await verifyRestoredAndMeasure(ctx, id, databaseUrl, captured);
  checkTarget(rec, 'RPO', rpo, rpoTarget);
  checkTarget(rec, 'restore RTO', rto, rtoTarget);
}

/** Both restores end alike: wait for the drill instance, verify it against the source; returns the RTO. */
async function verifyRestoredAndMeasure(
  ctx: RunContext,
  id: string,
  databaseUrl: string,
  captured: Awaited<ReturnType<typeof captureSource>>,
): Promise<number> {
  const { rec, deps } = ctx;
  const restored = await waitForInstanceAvailable(deps.rds, id, ctx.wait);
  rec.step(
    'restored instance available',
    `${restored.Endpoint?.Address ?? '?'}:${restored.Endpoint?.Port ?? '?'}`,
  );
  await verifyRestored(ctx, databaseUrl, restored, captured);
  const rto = (Date.now() - rec.startedAt.getTime()) / 1000;
  rec.measurements.rtoSeconds = rto;
  return rto;
}

function requireInstanceTopology(o: DrillOptions, drill: string): DrillOptions {
  if (o.topology !== 'multi-az-instance') {
    throw new DrillError(`'${drill}' supports '--topology multi-az-instance' only (got '${o.topology}')`);
  }
  return o;
}

async function cacheFailover(ctx: RunContext, rtoTarget: number): Promise<void> {
  const { o, rec, deps } = ctx;
  if (!o.redisUrl) throw new DrillError("no cache endpoint: pass '--redis-url <url>' or set REDIS_URL");
  const group = await describeReplicationGroup(deps.cache, o.cacheReplicationGroup);
  const before = primaryOf(group);
  rec.step(
    'replication group described',
    `${group.ReplicationGroupId}: ${group.Status}, primary ${before ?? '?'}`,
  );
  const rto = await withProber(
    ctx,
    redisProbeTarget(o.redisUrl, o.runId, o.probeTimeoutMs),
    'cache',
    async () => {
      try {
        await testFailover(deps.cache, group);
      } catch (error) {
        if (error instanceof UnsupportedOperationError)
          rec.check('TestFailover accepted', false, error.message);
        throw error;
      }
      rec.step(
        'failover requested',
        `TestFailover ${group.ReplicationGroupId} node group ${group.NodeGroups[0]!.NodeGroupId}`,
      );
      await sleep(o.pollIntervalMs, deps.signal, 'failover');
      const after = await waitForNewPrimary(deps.cache, o.cacheReplicationGroup, before, ctx.wait);
      rec.check('cache primary moved', after !== before, `${before ?? '?'} -> ${after ?? '?'}`);
    },
  );
  rec.measurements.rtoSeconds = rto;
  checkTarget(rec, 'cache failover RTO', rto, rtoTarget);
}

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CostExplorerClient, GetCostAndUsageCommand } from '@aws-sdk/client-cost-explorer';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import {
  alarmTopicArn,
  alarmTopicName,
  type EnvironmentConfig,
  loadEnvironmentConfig,
} from '../../config/environments.ts';
import type { CellDirectory } from '../cells.ts';
import { createTenant } from '../provisioner.ts';
import { limitTenant } from '../suspension.ts';
import { type MotoServer, startMoto } from '../testing/moto.ts';
import { createCatalogDatabase, dropRoles, type TestDatabase, uniqueTenantId } from '../testing/pg.ts';
import { CostDataError } from './costs.ts';
import { cePage, minutesForBudgetFraction, recordUsage, usdForBudgetFraction } from './fixtures.ts';
import { type CostGuardDeps, replayRun, runCostGuard } from './run.ts';

const NOW = new Date('2026-11-24T12:00:00Z');
const TIER = 'pro';

let moto: MotoServer;
let db: TestDatabase;
let pool: pg.Pool;
let cells: CellDirectory;
let manifestsDir: string;
const roles: string[] = [];
const silent = pino({ level: 'silent' });

function env(costGuard: Partial<EnvironmentConfig['costGuard']> = {}): EnvironmentConfig {
  const dev = loadEnvironmentConfig('dev');
  return { ...dev, costGuard: { ...dev.costGuard, ...costGuard } };
}

function deps(costGuard: Partial<EnvironmentConfig['costGuard']> = {}): CostGuardDeps {
  const caps = { maxActionsPerRun: 50, maxActionsPercent: 100 };
  return { pool, cells, env: env({ ...caps, ...costGuard }), manifestsDir, now: () => NOW, log: silent };
}

/** Creates a tenant through the provisioner (AWS off) with usage at `fraction` of its budget. */
async function tenantAt(stem: string, fraction: number): Promise<string> {
  const id = uniqueTenantId(stem);
  roles.push(id);
  await createTenant(
    { pool, cells, env: env(), aws: { enabled: false }, manifestsDir },
    { id, tier: TIER, actor: 'test' },
  );
  await recordUsage(pool, id, '2026-11-20', minutesForBudgetFraction(TIER, fraction));
  return id;
}

async function sentNotifications(): Promise<{ subject: string; message: Record<string, unknown> }[]> {
  const data = (await (await fetch(`${moto.endpoint}/moto-api/data.json`)).json()) as {
    sns: { Topic: { arn: string; sent_notifications: [string, string, string][] }[] };
  };
  const topic = data.sns.Topic.find((t) => t.arn === alarmTopicArn(env()));
  return (topic?.sent_notifications ?? []).map(([, message, subject]) => ({
    subject,
    message: JSON.parse(message),
  }));
}

async function catalog(ids: string[]) {
  const { rows } = await pool.query(
    `SELECT t.id, t.status::text AS status, q.guard_state, q.period, q.pending_state, q.pending_runs, q.saved_settings
       FROM control.tenants t LEFT JOIN control.quota_state q ON q.tenant_id = t.id
      WHERE t.id = ANY($1) ORDER BY t.id`,
    [ids],
  );
  return rows;
}

async function auditCount(): Promise<number> {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM control.audit_events');
  return rows[0].n;
}

async function role(id: string) {
  const { rows } = await pool.query('SELECT rolconnlimit, rolcanlogin FROM pg_roles WHERE rolname = $1', [
    id,
  ]);
  return rows[0];
}

beforeAll(async () => {
  moto = await startMoto();
  ({ db, pool, cells } = await createCatalogDatabase('cost_guard_run', 4));
});

afterAll(async () => {
  await pool.end();
  await db.drop();
  await dropRoles(roles);
  await moto.stop();
});

beforeEach(async () => {
  await moto.reset();
  await new SNSClient({}).send(new CreateTopicCommand({ Name: alarmTopicName(env()) }));
  // Earlier tests' tenants leave the guard's view so each test sees only its own.
  await pool.query(`UPDATE control.tenants SET status = 'archived'`);
  manifestsDir = await mkdtemp(path.join(tmpdir(), 'cost-guard-'));
});

afterEach(async () => {
  await rm(manifestsDir, { recursive: true, force: true });
});

describe('cost guard run', () => {
  test('tenants at 50%, 95%, 150% and 250% reach ok, warning, limited and suspended, one notification each', async () => {
    const ok = await tenantAt('ok', 0.5);
    const warn = await tenantAt('warn', 0.95);
    const lim = await tenantAt('lim', 1.5);
    const sus = await tenantAt('sus', 2.5);
    const before = await role(sus);
    await moto.seedCostAndUsage([
      cePage([
        [ok, usdForBudgetFraction(TIER, 0.5)],
        [warn, usdForBudgetFraction(TIER, 0.95)],
        [lim, usdForBudgetFraction(TIER, 1.5)],
        [sus, usdForBudgetFraction(TIER, 2.5)],
        [null, '3.25'],
      ]),
    ]);

    const first = await runCostGuard(deps(), { apply: true });
    expect(first.plan.untaggedUsd).toBe(3.25);
    expect(first.plan.ceRequests).toBe(1);
    const byId = (r: { tenantId: string }[], id: string) => r.find((d) => d.tenantId === id);
    expect(byId(first.plan.tenants, sus)).toMatchObject({
      to: 'limited',
      pending: { state: 'suspended', runs: 1 },
    });

    const second = await runCostGuard(deps(), { apply: true });
    expect(second.failures).toBe(0);
    const rows = await catalog([ok, warn, lim, sus]);
    const state = Object.fromEntries(rows.map((r) => [r.id, [r.status, r.guard_state]]));
    expect(state).toEqual({
      [ok]: ['active', null],
      [warn]: ['active', 'warning'],
      [lim]: ['limited', 'limited'],
      [sus]: ['suspended', 'suspended'],
    });
    expect(await role(sus)).toEqual({ rolconnlimit: 0, rolcanlogin: false });
    expect(rows.find((r) => r.id === sus).saved_settings).toMatchObject({
      previousStatus: 'limited',
      role: { connectionLimit: before.rolconnlimit, canLogin: true },
    });
    const limitedYaml = await readFile(path.join(manifestsDir, `${lim}.yaml`), 'utf8');
    expect(limitedYaml).toMatch(/pods: "?0"?/);

    const kinds = (await sentNotifications()).map((n) => `${n.message.tenantId}:${n.message.kind}`).sort();
    // 95% on the 24th projects past the budget with 6 days left: one burn-rate warning too.
    expect(kinds).toEqual(
      [`${warn}:warning`, `${warn}:burn-rate`, `${lim}:limited`, `${sus}:limited`, `${sus}:suspended`].sort(),
    );

    // 95% of the budget in 23.5 days reaches 100% after 24.7 days: on 25 Nov.
    expect((await sentNotifications()).map((n) => n.subject)).toContain(
      `[cost-guard] at this rate ${warn} reaches its limit on 25 Nov`,
    );
    const audits = await auditCount();
    const third = await runCostGuard(deps(), { apply: true });
    expect(third.outcomes).toEqual([]);
    expect(await sentNotifications()).toHaveLength(5);
    expect(await auditCount()).toBe(audits);
    const { rows: trail } = await pool.query(
      `SELECT action, from_status, to_status, evidence FROM control.audit_events
        WHERE tenant_id = $1 AND actor = 'cost-guard' ORDER BY id`,
      [sus],
    );
    expect(trail.map((t) => `${t.action} ${t.from_status}->${t.to_status}`)).toEqual([
      'tenant.limited active->limited',
      'cost-guard.state-changed ok->limited',
      'tenant.suspended limited->suspended',
      'cost-guard.state-changed limited->suspended',
    ]);
    expect(trail[3].evidence).toMatchObject({ meterRatio: 2.5, billRatio: 2.5, budgetUsd: 7 });
  });

  test.each([
    ['a missing second page', () => cePage([], { nextPageToken: 'page-2' }), /page 2 is missing/],
    ['stale data', () => cePage([], { costDay: '2026-11-20' }), /84\.0 h old \(max 36 h\)/],
    ['no day carrying cost yet', () => cePage([]), /no day carrying cost yet/],
  ])('%s changes nothing', async (_name, page, why) => {
    const id = await tenantAt('stale', 2.5);
    const answer = page();
    if (!why.source.includes('no day')) {
      answer.ResultsByTime.find((r) => r.TimePeriod.Start === '2026-11-20')!.Groups.push({
        Keys: [`tenant$${id}`],
        Metrics: { UnblendedCost: { Amount: usdForBudgetFraction(TIER, 2.5), Unit: 'USD' } },
      });
    }
    await moto.seedCostAndUsage([answer]);
    const before = await catalog([id]);
    const result = await runCostGuard(deps(), { apply: true });
    expect(result.plan.dataProblem).toMatch(why);
    expect(result.plan.tenants[0]).toMatchObject({ hold: 'unknown-data', actions: [] });
    expect(await catalog([id])).toEqual(before);
    expect(await sentNotifications()).toEqual([]);
  });

  test('Estimated answers, as Cost Explorer gives for the open month, confirm metering and act', async () => {
    const confirmed = await tenantAt('estc', 1.02);
    const alone = await tenantAt('esta', 1.2);
    const inside = await tenantAt('esti', 1.05);
    await moto.seedCostAndUsage([
      cePage(
        [
          [confirmed, usdForBudgetFraction(TIER, 1.05)],
          [inside, usdForBudgetFraction(TIER, 0.5)],
        ],
        { estimated: true },
      ),
    ]);
    const result = await runCostGuard(deps(), { apply: true });
    expect(result.plan.dataProblem).toBeNull();
    const to = Object.fromEntries(result.plan.tenants.map((d) => [d.tenantId, d.to]));
    expect(to).toEqual({ [confirmed]: 'limited', [alone]: 'limited', [inside]: 'warning' });
    expect(result.plan.tenants.find((d) => d.tenantId === alone)?.reason).toMatch(
      /billing: no Cost Explorer line/,
    );
    expect(await catalog([confirmed, alone])).toMatchObject([{ status: 'limited' }, { status: 'limited' }]);
  });

  test('Estimated billing alone never limits, and never blocks lifting the guard’s own limit', async () => {
    const spike = await tenantAt('esth', 0.3);
    const lifted = await tenantAt('estl', 1.5);
    await moto.seedCostAndUsage([cePage([[lifted, usdForBudgetFraction(TIER, 1.5)]], { estimated: true })]);
    await runCostGuard(deps(), { apply: true });
    expect(await catalog([lifted])).toMatchObject([{ status: 'limited', guard_state: 'limited' }]);

    // Metering falls (a credit), but Estimated billing still reads 150%.
    await recordUsage(pool, lifted, '2026-11-20', minutesForBudgetFraction(TIER, 0.3));
    await moto.reset();
    await new SNSClient({}).send(new CreateTopicCommand({ Name: alarmTopicName(env()) }));
    await moto.seedCostAndUsage([
      cePage(
        [
          [spike, usdForBudgetFraction(TIER, 2.5)],
          [lifted, usdForBudgetFraction(TIER, 1.5)],
        ],
        { estimated: true },
      ),
    ]);
    const result = await runCostGuard(deps(), { apply: true });
    const byId = new Map(result.plan.tenants.map((d) => [d.tenantId, d]));
    expect(byId.get(spike)).toMatchObject({ to: 'warning', needsHuman: true });
    // Billing alone may still warn, but the limit is lifted.
    expect(byId.get(lifted)).toMatchObject({
      from: 'limited',
      to: 'warning',
      actions: ['resume', 'notify'],
    });
    const status = Object.fromEntries((await catalog([spike, lifted])).map((r) => [r.id, r.status]));
    expect(status).toEqual({ [spike]: 'active', [lifted]: 'active' });
  });

  test('a throttled Cost Explorer is retried, then the run gives up without acting', async () => {
    const id = await tenantAt('thr', 2.5);
    const ce = new CostExplorerClient({});
    // moto cannot throttle: this one client instance is mocked, everything else stays real.
    mockClient(ce)
      .on(GetCostAndUsageCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const result = await runCostGuard(
      { ...deps(), ce, fetch: { maxAttempts: 3, sleep: async () => {} } },
      { apply: true },
    );
    expect(result.plan.dataProblem).toBe('Cost Explorer throttled page 1 3 times');
    expect(result.plan.ceRequests).toBe(3);
    expect(result.outcomes).toEqual([]);
    expect(await catalog([id])).toMatchObject([{ status: 'active', guard_state: null }]);
    const { rows } = await pool.query('SELECT outcome, inputs FROM control.cost_guard_runs WHERE id = $1', [
      result.runId,
    ]);
    expect(rows[0].outcome).toMatch(/throttled/);
    expect(rows[0].inputs.costs.problem).toMatch(/throttled/);
  });

  test('a billing-only spike warns and asks for a human, but does not limit or suspend', async () => {
    const id = await tenantAt('spike', 0.5);
    await moto.seedCostAndUsage([cePage([[id, usdForBudgetFraction(TIER, 2.5)]])]);
    await runCostGuard(deps(), { apply: true });
    await runCostGuard(deps(), { apply: true });
    expect(await catalog([id])).toMatchObject([{ status: 'active', guard_state: 'warning' }]);
    const kinds = (await sentNotifications()).map((n) => n.message.kind).sort();
    expect(kinds).toEqual(['needs-human', 'warning']);
  });

  test('replaying a stored run gives the same plan and acts on nothing', async () => {
    const a = await tenantAt('rep', 1.5);
    const b = await tenantAt('rep', 0.95);
    await moto.seedCostAndUsage([
      cePage([[a, usdForBudgetFraction(TIER, 1.5)]], { nextPageToken: 'p2' }),
      cePage([[b, usdForBudgetFraction(TIER, 0.95)]]),
    ]);
    const run = await runCostGuard(deps(), { apply: true });
    expect(run.plan.ceRequests).toBe(2);
    const after = await catalog([a, b]);
    const replay = await replayRun(pool, run.runId);
    expect(replay.same).toBe(true);
    expect(replay.plan).toEqual(run.plan);
    expect(await catalog([a, b])).toEqual(after);
  });

  test('the per-run cap stops at N tenants, worst first, and holds the rest', async () => {
    const ids = [
      await tenantAt('cap', 1.2),
      await tenantAt('cap', 1.5),
      await tenantAt('cap', 1.8),
      await tenantAt('cap', 1.3),
    ];
    const fractions = [1.2, 1.5, 1.8, 1.3];
    await moto.seedCostAndUsage([
      cePage(ids.map((id, i) => [id, usdForBudgetFraction(TIER, fractions[i]!)])),
    ]);
    const result = await runCostGuard(deps({ maxActionsPerRun: 2, maxActionsPercent: 100 }), { apply: true });
    expect(result.plan.cap).toEqual({ limit: 2, used: 2, held: 2 });
    const status = Object.fromEntries((await catalog(ids)).map((r) => [r.id, r.status]));
    expect(ids.map((id) => status[id])).toEqual(['active', 'limited', 'limited', 'active']);
  });

  test('a dry run plans the same actions and changes nothing', async () => {
    const lim = await tenantAt('dry', 1.5);
    const sus = await tenantAt('dry', 2.5);
    await moto.seedCostAndUsage([
      cePage([
        [lim, usdForBudgetFraction(TIER, 1.5)],
        [sus, usdForBudgetFraction(TIER, 2.5)],
      ]),
    ]);
    const before = { catalog: await catalog([lim, sus]), role: await role(sus), audits: await auditCount() };
    const manifestsBefore = await readdir(manifestsDir);
    const dry = await runCostGuard(deps(), { apply: false });
    expect(dry.plan.tenants.map((t) => [t.to, t.actions])).toEqual([
      ['limited', ['limit', 'notify']],
      ['limited', ['limit', 'notify']],
    ]);
    expect(dry.outcomes).toEqual([]);
    expect(await catalog([lim, sus])).toEqual(before.catalog);
    expect(await role(sus)).toEqual(before.role);
    expect(await auditCount()).toBe(before.audits);
    expect(await readdir(manifestsDir)).toEqual(manifestsBefore);
    for (const id of [lim, sus]) {
      expect(await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8')).not.toMatch(/pods: "?0"?\n/);
    }
    expect(await sentNotifications()).toEqual([]);
  });

  test('the kill switch records the run and acts on nothing', async () => {
    const id = await tenantAt('kill', 1.5);
    await moto.seedCostAndUsage([cePage([[id, usdForBudgetFraction(TIER, 1.5)]])]);
    const result = await runCostGuard(deps({ enforcementEnabled: false }), { apply: true });
    expect(result.plan.tenants[0]).toMatchObject({ target: 'limited', to: 'ok', hold: 'kill-switch' });
    expect(await catalog([id])).toMatchObject([{ status: 'active' }]);
  });

  test('without auto-suspend a suspension waits for --approve-suspend', async () => {
    const id = await tenantAt('appr', 2.5);
    await moto.seedCostAndUsage([cePage([[id, usdForBudgetFraction(TIER, 2.5)]])]);
    const noAuto = deps({ autoSuspend: false });
    await runCostGuard(noAuto, { apply: true });
    const waiting = await runCostGuard(noAuto, { apply: true });
    expect(waiting.plan.tenants[0]).toMatchObject({ to: 'limited', hold: 'needs-approval' });
    expect(await catalog([id])).toMatchObject([{ status: 'limited' }]);
    await runCostGuard(noAuto, { apply: true, approveSuspend: true });
    expect(await catalog([id])).toMatchObject([{ status: 'suspended', guard_state: 'suspended' }]);
    const kinds = (await sentNotifications()).map((n) => n.message.kind).sort();
    expect(kinds).toEqual(['limited', 'suspend-approval', 'suspended']);
  });

  test('a live override keeps the tenant from being limited', async () => {
    const id = await tenantAt('ovr', 1.5);
    await pool.query(
      `INSERT INTO control.cost_guard_overrides (tenant_id, expires_at, reason, actor) VALUES ($1, $2, 'deal', 'sre')`,
      [id, '2026-11-30T00:00:00Z'],
    );
    await moto.seedCostAndUsage([cePage([[id, usdForBudgetFraction(TIER, 1.5)]])]);
    const result = await runCostGuard(deps(), { apply: true });
    expect(result.plan.tenants[0]).toMatchObject({ target: 'limited', to: 'warning', hold: 'override' });
    expect(await catalog([id])).toMatchObject([{ status: 'active', guard_state: 'warning' }]);
  });

  /** A tenant limited in October by `by`, with the guard's state from October. */
  async function limitedLastMonth(stem: string, by: string): Promise<string> {
    const id = await tenantAt(stem, 0.1);
    await limitTenant({ pool, cells, env: env(), manifestsDir }, id, {
      actor: by,
      reason: 'over budget in October',
    });
    await pool.query(
      `INSERT INTO control.quota_state (tenant_id, guard_state, period) VALUES ($1, 'limited', '2026-10')
       ON CONFLICT (tenant_id) DO UPDATE SET guard_state = 'limited', period = '2026-10'`,
      [id],
    );
    return id;
  }

  test("a new UTC month resets the state and lifts the guard's own limit from last month", async () => {
    const id = await limitedLastMonth('month', 'cost-guard');
    await moto.seedCostAndUsage([cePage([[id, usdForBudgetFraction(TIER, 0.1)]])]);
    const result = await runCostGuard(deps(), { apply: true });
    expect(result.plan.tenants[0]).toMatchObject({
      from: 'limited',
      to: 'ok',
      actions: ['resume', 'notify'],
    });
    expect(await catalog([id])).toMatchObject([{ status: 'active', guard_state: 'ok', period: '2026-11' }]);
  });

  test('the guard never lifts a limit someone else set', async () => {
    const id = await limitedLastMonth('human', 'sre:alice');
    await moto.seedCostAndUsage([cePage([[id, usdForBudgetFraction(TIER, 0.1)]])]);
    const result = await runCostGuard(deps(), { apply: true });
    expect(result.plan.tenants[0]).toMatchObject({ to: 'ok', actions: ['notify'], hold: 'set-by-human' });
    expect(await catalog([id])).toMatchObject([{ status: 'limited', guard_state: 'ok' }]);
  });

  test.each([
    [
      'an unknown tag format',
      { Keys: ['team$acme'] },
      /Keys\.0' \("team\$acme"\) must be a 'tenant\$<id>' tag key/,
    ],
    [
      'a negative amount',
      { Metrics: { UnblendedCost: { Amount: '-4.20', Unit: 'USD' } } },
      /\("-4\.20"\) must be a non-negative/,
    ],
    [
      'a non-USD unit',
      { Metrics: { UnblendedCost: { Amount: '4.20', Unit: 'EUR' } } },
      /\("EUR"\) must be 'USD'/,
    ],
  ])('a malformed response (%s) gives one clear error and no action', async (_name, patch, why) => {
    const id = await tenantAt('bad', 2.5);
    const page = cePage([[id, usdForBudgetFraction(TIER, 2.5)]]);
    Object.assign(page.ResultsByTime.at(-1)!.Groups[0]!, patch);
    await moto.seedCostAndUsage([page]);
    const runs = (await pool.query('SELECT count(*)::int AS n FROM control.cost_guard_runs')).rows[0].n;
    const error = await runCostGuard(deps(), { apply: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CostDataError);
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toMatch(/no action taken$/);
    expect((error as Error).message).not.toContain('\n');
    expect(await catalog([id])).toMatchObject([{ status: 'active', guard_state: null }]);
    expect((await pool.query('SELECT count(*)::int AS n FROM control.cost_guard_runs')).rows[0].n).toBe(runs);
    expect(await sentNotifications()).toEqual([]);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { floorHour } from '../billing/export.ts';
import {
  type BillingFixture,
  insertHours,
  insertTenants,
  linkCustomer,
  startBilling,
} from '../billing/testing/fixture.ts';
import { createMetrics } from '../control-plane/metrics.ts';
import { UsageBatcher } from '../control-plane/usage-batcher.ts';
import { recordLeaseRuns } from '../tenants/metering/lease-minutes.ts';
import { dropRoles, uniqueTenantId } from '../tenants/testing/pg.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TENANTS = Array.from({ length: 12 }, (_, i) => `bill-cli-${String(i).padStart(2, '0')}`);
const HOURS = 48;

let f: BillingFixture;
let first: Date;
let customers: string[];

interface Run {
  readonly child: ChildProcess;
  readonly done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>;
}

function billing(args: string[], env: Record<string, string | undefined> = {}, bin = 'bin/billing.ts'): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: f.db.url,
      STRIPE_API_KEY: f.server.apiKey,
      STRIPE_API_URL: f.server.url,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

const count = async (pool: pg.Pool, sql: string) => (await pool.query<{ n: number }>(sql)).rows[0]!.n;

/** The months the test hours touch: one, or two when they straddle a month's start. */
const months = () => [
  ...new Set(
    [first, new Date(first.getTime() + (HOURS - 1) * 3600_000)].map((d) => d.toISOString().slice(0, 7)),
  ),
];

beforeAll(async () => {
  f = await startBilling('billing_cli');
  await insertTenants(f.pool, TENANTS);
  customers = [];
  for (const id of TENANTS) customers.push(await linkCustomer(f, id));
  // The last HOURS closed hours, with a margin for the export's settle time.
  first = new Date(floorHour(new Date(Date.now() - 10 * 60_000)).getTime() - HOURS * 3600_000);
  // Half the tenants are metered the way the control plane meters them: usage reports through the batcher
  // (two a hour, one repeated with its idempotency key) and leased agent-minutes through the lease writer.
  const metered = TENANTS.slice(0, TENANTS.length / 2);
  const batcher = new UsageBatcher(f.pool, {
    maxReports: 1_000,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
  });
  const reports: Promise<boolean>[] = [];
  for (const tenantId of metered) {
    for (let h = 0; h < HOURS; h += 1) {
      const at = new Date(first.getTime() + h * 3600_000);
      const report = {
        tenantId,
        day: at.toISOString().slice(0, 10),
        hour: at.toISOString(),
        agentMinutes: 1.25,
        apiCalls: 7,
      };
      reports.push(batcher.record({ ...report, idempotencyKey: `${tenantId}-${h}-a` }));
      reports.push(batcher.record({ ...report, idempotencyKey: `${tenantId}-${h}-b`, apiCalls: 3 }));
      reports.push(batcher.record({ ...report, idempotencyKey: `${tenantId}-${h}-a` }));
    }
  }
  await Promise.all(reports);
  await batcher.close();
  // A 90-minute lease in the first hours: leased minutes bill where they exceed the reported ones.
  await recordLeaseRuns(
    f.pool,
    metered.map((tenantId) => ({
      tenantId,
      taskId: 'task-1',
      startedAt: first.getTime(),
      until: first.getTime() + 90 * 60_000,
    })),
  );
  for (const id of TENANTS.slice(TENANTS.length / 2)) await insertHours(f.pool, id, first, HOURS);
});
const onboarded: string[] = [];
const manifestsDir = mkdtempSync(path.join(tmpdir(), 'billing-cli-manifests-'));
afterAll(async () => {
  await f?.close();
  await dropRoles(onboarded);
  rmSync(manifestsDir, { recursive: true, force: true });
});

describe('npm run billing', () => {
  it('stops in one line without a Stripe key, before it writes anything', async () => {
    const { code, stdout, stderr } = await billing(['export'], { STRIPE_API_KEY: '' }).done;
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe('error: STRIPE_API_KEY is not set: billing needs the Stripe secret key');
    expect(await count(f.pool, 'SELECT count(*)::int AS n FROM control.billing_export_runs')).toBe(0);
  });

  it('killed mid-export and run again, holds each hour once in Stripe, and reconcile finds no difference', async () => {
    let batches = 0;
    const run = billing(['export']);
    f.server.onStreamAccepted = () => {
      batches += 1;
      // Stripe has the events of this batch; the exporter dies before it hears back.
      if (batches === 6) run.child.kill('SIGKILL');
    };
    const killed = await run.done;
    f.server.onStreamAccepted = null;
    expect(killed.signal).toBe('SIGKILL');
    expect(
      await count(f.pool, "SELECT count(*)::int AS n FROM control.billing_buckets WHERE state = 'pending'"),
    ).toBeGreaterThan(0);
    const before = f.server.events.length;
    expect(before).toBeLessThan(TENANTS.length * HOURS * 2);

    const rerun = await billing(['export', '--json']).done;
    expect(rerun.code).toBe(0);
    const result = JSON.parse(rerun.stdout);
    expect(result.ok).toBe(true);
    expect(result.replays).toBeGreaterThan(0);
    // The batch Stripe took before the kill is replayed with its identifiers and dropped as a duplicate.
    expect(f.server.stats.duplicates).toBeGreaterThan(0);
    expect(f.server.events.length).toBe(before + result.events + result.replays - f.server.stats.duplicates);
    // Every bucket once: one stored event per identifier, one per tenant, meter and hour.
    const identifiers = f.server.events.map((e) => e.identifier);
    expect(new Set(identifiers).size).toBe(identifiers.length);
    expect(identifiers.length).toBe(TENANTS.length * HOURS * 2);
    const end = first.getTime() + HOURS * 3600_000;
    for (const customer of customers) {
      for (const meter of ['agent_minutes', 'api_calls']) {
        expect(f.server.effectiveEvents(customer, meter, first.getTime(), end)).toHaveLength(HOURS);
      }
    }
    // A metered tenant: 60 leased minutes in the first hour, 30 in the second, 2.5 reported in the others.
    expect(f.server.aggregate(customers[0]!, 'agent_minutes', first.getTime(), end)).toBe(
      60 + 30 + (HOURS - 2) * 2.5,
    );
    expect(f.server.aggregate(customers[0]!, 'api_calls', first.getTime(), end)).toBe(HOURS * 10);
    expect(
      await count(f.pool, "SELECT count(*)::int AS n FROM control.billing_buckets WHERE state = 'pending'"),
    ).toBe(0);
    const { rows: runs } = await f.pool.query('SELECT status FROM control.billing_export_runs ORDER BY id');
    expect(runs.map((r) => r.status)).toEqual(['interrupted', 'done']);

    for (const month of months()) {
      const reconcile = await billing(['reconcile', '--month', month, '--no-notify']).done;
      expect(reconcile.stderr).toBe('');
      expect(reconcile.code).toBe(0);
      expect(reconcile.stdout).toMatch(
        new RegExp(`^billing reconcile ${month} .*, 0 difference\\(s\\), 0 past tolerance\\n$`),
      );
    }
  });

  it('exits non-zero when reconcile finds a difference past the tolerance, and lists it', async () => {
    await f.pool.query(
      'UPDATE control.usage_hourly SET api_calls = api_calls + 500 WHERE tenant_id = $1 AND hour = $2',
      [TENANTS[3], first],
    );
    const month = first.toISOString().slice(0, 7);
    const { code, stdout } = await billing(['reconcile', '--month', month, '--no-notify']).done;
    expect(code).toBe(1);
    expect(stdout).toContain('1 difference(s), 1 past tolerance');
    expect(stdout).toMatch(new RegExp(`${TENANTS[3]}\\s+api_calls\\s+\\d+\\s+\\d+\\s+-500\\s+yes`));
  });

  it('npm run tenant -- create --stripe-customer links that customer, and refuses a malformed id in one line', async () => {
    const id = uniqueTenantId('bill-onb');
    onboarded.push(id);
    const customer = await f.stripe.customers.create({ name: 'Initech' });
    const tenant = (args: string[]) =>
      billing(
        ['--no-aws', '--manifests-dir', manifestsDir, '--json', 'create', id, '--tier', 'starter', ...args],
        { LOG_LEVEL: 'silent' },
        'bin/tenant.ts',
      ).done;
    const bad = await tenant(['--stripe-customer', 'initech']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(
      "error: '--stripe-customer' (initech) must be a Stripe customer id (cus_…)",
    );
    const good = await tenant(['--stripe-customer', customer.id]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout).steps.find((s: { step: string }) => s.step === 'billing')).toMatchObject({
      action: 'applied',
      changes: [
        `link Stripe customer ${customer.id}`,
        'subscribe to tier starter (monthly fee, agent minutes, API calls)',
      ],
    });
    const { rows } = await f.pool.query(
      'SELECT stripe_customer_id FROM control.billing_customers WHERE tenant_id = $1',
      [id],
    );
    expect(rows).toEqual([{ stripe_customer_id: customer.id }]);
  });
});

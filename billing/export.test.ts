import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createStripeClient } from './config.ts';
import { type ExportDeps, exportUsage } from './export.ts';
import { bucketIdentifier } from './identifiers.ts';
import {
  type BillingFixture,
  insertHours,
  insertTenants,
  linkCustomer,
  startBilling,
  TEST_RETRY,
} from './testing/fixture.ts';
import { CatalogUsageSource, type HourlyUsage, type UsageSource } from './usage-source.ts';

const NOW = new Date('2026-12-02T00:30:00Z');
const NOV = new Date('2026-11-01T00:00:00Z');
const DEC = new Date('2026-12-01T00:00:00Z');
const HOURS = 720;

let f: BillingFixture;
let customers: Record<string, string>;
const A = 'bill-exp-a';
const B = 'bill-exp-b';

const deps = (extra: Partial<ExportDeps> = {}): ExportDeps => ({
  pool: f.pool,
  stripe: f.stripe,
  env: f.env,
  usage: new CatalogUsageSource(f.pool),
  retry: TEST_RETRY,
  now: () => NOW,
  ...extra,
});

/** What Stripe bills per (meter, hour) for a customer: one effective event per hour or none. */
function stripeHours(customer: string, meter: string) {
  return f.server.effectiveEvents(customer, meter, NOV.getTime(), DEC.getTime());
}

beforeAll(async () => {
  f = await startBilling('billing_export', { now: () => NOW.getTime() });
});
afterAll(async () => {
  await f?.close();
});

beforeEach(async () => {
  await f.pool.query(
    'TRUNCATE control.billing_buckets, control.billing_export_runs, control.usage_hourly, control.billing_customers, control.tenants CASCADE',
  );
  f.server.resetEvents();
  await insertTenants(f.pool, [A, B]);
  customers = { [A]: await linkCustomer(f, A), [B]: await linkCustomer(f, B) };
  await insertHours(f.pool, A, NOV, HOURS);
  await insertHours(f.pool, B, NOV, HOURS, (i) => ({ agentMinutes: i % 3, apiCalls: 5 }));
});

describe('billing export', () => {
  it('sends each closed hour once per meter with the derived identifier, 100 events a request', async () => {
    const result = await exportUsage(deps(), { since: NOV });
    // B has agent minutes 0 in every third hour: a zero bucket is not sent.
    const bAgentHours = HOURS - HOURS / 3;
    expect(result).toMatchObject({ ok: true, events: HOURS * 3 + bAgentHours, corrections: 0, replays: 0 });
    expect(result.batches).toBe(Math.ceil((HOURS * 2) / 100) + Math.ceil((HOURS + bAgentHours) / 100));
    expect(result.requests).toBe(result.batches + 1);
    expect(stripeHours(customers[A]!, 'agent_minutes')).toHaveLength(HOURS);
    expect(f.server.aggregate(customers[A]!, 'api_calls', NOV.getTime(), DEC.getTime())).toBe(
      Array.from({ length: HOURS }, (_, i) => 10 + i).reduce((a, b) => a + b, 0),
    );
    const first = f.server.events.find(
      (e) => e.customer === customers[A] && e.eventName === 'agent_minutes',
    )!;
    expect(first.identifier).toBe(bucketIdentifier('dev', A, 'agent_minutes', NOV, 0));
    expect(first.identifier).toBe('ap-dev:bill-exp-a:agent_minutes:2026-11-01T00Z:r0');
    expect(f.server.errorReports).toEqual([]);
  });

  it('sends nothing on a second run, and a dry run sends and writes nothing', async () => {
    const dry = await exportUsage(deps({ stripe: null }), { since: NOV, dryRun: true });
    expect(dry.events).toBeGreaterThan(0);
    expect(f.server.events).toHaveLength(0);
    expect((await f.pool.query('SELECT 1 FROM control.billing_buckets')).rowCount).toBe(0);
    await exportUsage(deps(), { since: NOV });
    const held = f.server.events.length;
    const again = await exportUsage(deps(), { since: NOV });
    expect(again).toMatchObject({ events: 0, corrections: 0, replays: 0, requests: 0, ok: true });
    expect(f.server.events).toHaveLength(held);
  });

  it('sends a late increase as the next revision, which replaces the hour in Stripe', async () => {
    await exportUsage(deps(), { since: NOV });
    const hour = new Date('2026-11-10T05:00:00Z');
    await f.pool.query(
      'UPDATE control.usage_hourly SET agent_minutes = agent_minutes + 2.25 WHERE tenant_id = $1 AND hour = $2',
      [A, hour],
    );
    const before = f.server.aggregate(customers[A]!, 'agent_minutes', NOV.getTime(), DEC.getTime());
    const result = await exportUsage(deps(), { since: NOV });
    expect(result).toMatchObject({ events: 0, corrections: 1 });
    const inHour = f.server.events.filter(
      (e) =>
        e.customer === customers[A] &&
        e.eventName === 'agent_minutes' &&
        e.timestamp - hour.getTime() < 3600_000 &&
        e.timestamp >= hour.getTime(),
    );
    expect(inHour.map((e) => e.identifier)).toEqual([
      bucketIdentifier('dev', A, 'agent_minutes', hour, 0),
      bucketIdentifier('dev', A, 'agent_minutes', hour, 1),
    ]);
    expect(f.server.aggregate(customers[A]!, 'agent_minutes', NOV.getTime(), DEC.getTime())).toBeCloseTo(
      before + 2.25,
      6,
    );
    expect(stripeHours(customers[A]!, 'agent_minutes')).toHaveLength(HOURS);
  });

  it('resumes after a crash mid-run and sends each bucket exactly once', async () => {
    let batches = 0;
    await expect(
      exportUsage(
        deps({
          concurrency: 1,
          observer: {
            afterBatch: () => {
              batches += 1;
              if (batches === 5) throw new Error('simulated crash');
            },
          },
        }),
        { since: NOV },
      ),
    ).rejects.toThrow('simulated crash');
    const { rows: runs } = await f.pool.query('SELECT status FROM control.billing_export_runs');
    expect(runs).toEqual([{ status: 'failed' }]);
    const partial = f.server.events.length;
    expect(partial).toBe(500);
    const resumed = await exportUsage(deps(), { since: NOV });
    expect(resumed.ok).toBe(true);
    expect(f.server.stats.duplicates).toBe(0);
    const identifiers = f.server.events.map((e) => e.identifier);
    expect(new Set(identifiers).size).toBe(identifiers.length);
    for (const tenant of [A, B]) {
      expect(stripeHours(customers[tenant]!, 'api_calls')).toHaveLength(HOURS);
    }
  });

  it('replays a batch Stripe received before the crash with the same identifiers, which Stripe drops', async () => {
    // The crash falls after the batch reached Stripe and before it was marked sent: it stays pending.
    await f.pool.query('SELECT 1');
    let calls = 0;
    const crashing = new Proxy(f.stripe.v2.billing.meterEventStream, {
      get(target, prop, receiver) {
        if (prop !== 'create') return Reflect.get(target, prop, receiver);
        return async (...args: Parameters<typeof target.create>) => {
          const answer = await target.create(...args);
          calls += 1;
          if (calls === 3) throw new Error('killed after Stripe answered');
          return answer;
        };
      },
    });
    const original = f.stripe.v2.billing.meterEventStream;
    Object.defineProperty(f.stripe.v2.billing, 'meterEventStream', { value: crashing, configurable: true });
    try {
      await expect(exportUsage(deps({ concurrency: 1 }), { since: NOV })).rejects.toThrow(
        'killed after Stripe answered',
      );
    } finally {
      Object.defineProperty(f.stripe.v2.billing, 'meterEventStream', { value: original, configurable: true });
    }
    const { rows } = await f.pool.query(
      "SELECT count(*)::int AS n FROM control.billing_buckets WHERE state = 'pending'",
    );
    expect(rows[0].n).toBe(100);
    const resumed = await exportUsage(deps(), { since: NOV });
    expect(resumed.replays).toBe(100);
    expect(f.server.stats.duplicates).toBe(100);
    expect(stripeHours(customers[A]!, 'agent_minutes')).toHaveLength(HOURS);
    const pending = await f.pool.query("SELECT 1 FROM control.billing_buckets WHERE state = 'pending'");
    expect(pending.rowCount).toBe(0);
  });

  it('retries 429 and 5xx with backoff and finishes', async () => {
    f.server.inject({
      match: /meter_event_stream/,
      fault: { status: 429, type: 'rate_limit', code: 'rate_limit', message: 'Too many requests' },
      times: 2,
    });
    f.server.inject({
      match: /meter_event_stream/,
      fault: { status: 503, type: 'api_error', message: 'Service unavailable' },
      times: 1,
    });
    const faults = f.server.stats.faults;
    const result = await exportUsage(deps({ concurrency: 1 }), { since: NOV, tenants: [A] });
    expect(result.ok).toBe(true);
    expect(f.server.stats.faults - faults).toBe(3);
    expect(stripeHours(customers[A]!, 'agent_minutes')).toHaveLength(HOURS);
  });

  it('stops a tenant Stripe refuses with a 4xx, in one line, and goes on with the next', async () => {
    f.server.inject({
      match: /meter_event_stream/,
      customer: customers[A]!,
      fault: {
        status: 400,
        type: 'invalid_request_error',
        code: 'parameter_invalid',
        message: 'Invalid payload',
      },
    });
    const result = await exportUsage(deps({ concurrency: 1 }), { since: NOV });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      {
        tenantId: A,
        kind: 'stripe',
        message: `tenant '${A}' stopped: Stripe 400 StripeInvalidRequestError/parameter_invalid: Invalid payload`,
      },
    ]);
    expect(stripeHours(customers[A]!, 'agent_minutes')).toHaveLength(0);
    expect(stripeHours(customers[B]!, 'api_calls')).toHaveLength(HOURS);
    const rerun = await exportUsage(deps(), { since: NOV });
    expect(rerun.ok).toBe(true);
    expect(stripeHours(customers[A]!, 'agent_minutes')).toHaveLength(HOURS);
  });

  it('stops the whole run when Stripe refuses the key, instead of failing every tenant', async () => {
    const url = new URL(f.server.url);
    const wrongKey = createStripeClient({
      apiKey: 'sk_test_revoked',
      api: { host: url.hostname, port: Number(url.port), protocol: 'http' },
      reconcileTolerance: 0,
    });
    await expect(exportUsage(deps({ stripe: wrongKey }), { since: NOV })).rejects.toThrow(
      'Invalid API Key provided',
    );
    expect(f.server.events).toHaveLength(0);
    const { rows } = await f.pool.query('SELECT status FROM control.billing_export_runs');
    expect(rows).toEqual([{ status: 'failed' }]);
  });

  it('reports and skips an unknown tenant and a tenant without a Stripe customer', async () => {
    await insertTenants(f.pool, ['bill-exp-c']);
    await insertHours(f.pool, 'bill-exp-c', NOV, 3);
    const result = await exportUsage(deps(), { since: NOV, tenants: ['bill-exp-c', 'bill-exp-nope', B] });
    expect(result.ok).toBe(true);
    expect(result.problems.map((p) => [p.tenantId, p.kind])).toEqual([
      ['bill-exp-c', 'no-customer'],
      ['bill-exp-nope', 'unknown-tenant'],
    ]);
    expect(result.problems[0]!.message).toContain('--stripe-customer');
    expect(stripeHours(customers[B]!, 'api_calls')).toHaveLength(HOURS);
    expect(stripeHours(customers[A]!, 'api_calls')).toHaveLength(0);
  });

  it('refuses a row that fell after it was billed, and sends nothing for it', async () => {
    await exportUsage(deps(), { since: NOV });
    const hour = new Date('2026-11-03T07:00:00Z');
    await f.pool.query('UPDATE control.usage_hourly SET api_calls = 1 WHERE tenant_id = $1 AND hour = $2', [
      A,
      hour,
    ]);
    const before = f.server.events.length;
    const result = await exportUsage(deps(), { since: NOV });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      {
        tenantId: A,
        kind: 'refused',
        message: `tenant '${A}': api_calls for 2026-11-03T07Z fell from ${10 + 55} to 1 after it was billed: row refused`,
      },
    ]);
    expect(f.server.events.length).toBe(before);
  });

  it('refuses negative or malformed usage from the source and still sends the sound rows', async () => {
    const rows: HourlyUsage[] = [
      { tenantId: A, hour: NOV, agentMinutes: '-4', apiCalls: '3' },
      { tenantId: A, hour: new Date(NOV.getTime() + 3600_000), agentMinutes: 'NaN', apiCalls: '3' },
      { tenantId: A, hour: new Date(NOV.getTime() + 90 * 60_000), agentMinutes: '1', apiCalls: '3' },
      { tenantId: A, hour: new Date(NOV.getTime() + 2 * 3600_000), agentMinutes: '1.5', apiCalls: '2.5' },
      { tenantId: A, hour: new Date(NOV.getTime() + 3 * 3600_000), agentMinutes: '1.5', apiCalls: '4' },
    ];
    const source: UsageSource = {
      tenants: async () => [A],
      hours: async () => rows,
      totals: async () => new Map(),
    };
    const result = await exportUsage(deps({ usage: source }), { since: NOV });
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.message)).toEqual([
      `tenant '${A}': usage row refused: agent_minutes "-4" is not a non-negative quantity`,
      `tenant '${A}': usage row refused: agent_minutes "NaN" is not a non-negative quantity`,
      `tenant '${A}': usage row refused: hour 2026-11-01T01:30:00.000Z is not a whole UTC hour`,
      `tenant '${A}': usage row refused: api_calls "2.5" is not a whole number`,
    ]);
    expect(f.server.events.map((e) => [e.eventName, e.value])).toEqual([
      ['agent_minutes', 1.5],
      ['api_calls', 4],
    ]);
  });

  it('does not send hours older than Stripe accepts, and says so', async () => {
    const old = new Date('2026-10-20T00:00:00Z');
    await insertHours(f.pool, A, old, 2);
    const result = await exportUsage(deps(), { since: old, tenants: [A] });
    expect(result.problems).toEqual([
      expect.objectContaining({
        tenantId: A,
        kind: 'too-old',
        message: expect.stringContaining("4 bucket(s) older than Stripe's 35-day limit"),
      }),
    ]);
    expect(f.server.events.every((e) => e.timestamp >= NOV.getTime())).toBe(true);
  });
});

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { billableUsageByHour, billableUsageByTenant } from '../tenants/metering/billable-usage.ts';
import { getTier } from '../tenants/tiers.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

// The clock is the test's, so a realistic interval costs no waiting.
const HEARTBEAT_MS = 240_000;
let fx: ControlPlaneFixture;
// Near the real time: usage reports are dated by the real clock.
let now = Date.now();
const clock = () => now;
let replicaA: FastifyInstance;
let replicaB: FastifyInstance;

beforeAll(async () => {
  fx = await createFixture('lease');
  const env = { LEASE_HEARTBEAT_MS: String(HEARTBEAT_MS), TENANT_CACHE_TTL_MS: '0' };
  // Two replicas on one Redis: whatever one grants, the other sees.
  replicaA = await fx.server(env, { clock });
  replicaB = await fx.server(env, { clock });
});
afterAll(() => fx.close());

async function post(app: FastifyInstance, key: string, url: string, payload?: unknown) {
  const res = await app.inject({ method: 'POST', url, headers: bearer(key), payload: payload ?? {} });
  expect(res.statusCode).toBe(200);
  return res.json();
}

const admit = (app: FastifyInstance, key: string, taskId: string) =>
  post(app, key, '/v1/admission', { taskId });
const beat = (app: FastifyInstance, key: string, taskId: string) =>
  post(app, key, `/v1/admission/${taskId}/heartbeat`);

describe('leases', () => {
  test('admission answers a lease with its expiry, heartbeat interval and the tier maximum runtime', async () => {
    const t = await fx.tenant('pro');
    expect(await admit(replicaA, t.key, 'job-1')).toEqual({
      decision: 'allow',
      lease: {
        taskId: 'job-1',
        expiresAt: new Date(now + 3 * HEARTBEAT_MS).toISOString(),
        heartbeatSeconds: 240,
        maxRuntimeSeconds: getTier('pro').maxTaskMinutes * 60,
      },
    });
    now += HEARTBEAT_MS;
    expect(await beat(replicaB, t.key, 'job-1')).toEqual({
      action: 'continue',
      expiresAt: new Date(now + 3 * HEARTBEAT_MS).toISOString(),
    });
  });

  test('a lease that misses its heartbeats expires, frees its slot on every replica, and its minutes count', async () => {
    const t = await fx.tenant('free');
    expect((await admit(replicaA, t.key, 'lost')).decision).toBe('allow');
    expect(await admit(replicaB, t.key, 'second')).toEqual({
      decision: 'deny',
      reason: 'concurrent tasks at the tier limit (1/1)',
    });
    now += 3 * HEARTBEAT_MS;
    expect(await beat(replicaB, t.key, 'lost')).toMatchObject({ action: 'stop', reason: 'lease-lost' });
    expect((await admit(replicaB, t.key, 'second')).decision).toBe('allow');
    const me = (await replicaA.inject({ method: 'GET', url: '/v1/me', headers: bearer(t.key) })).json();
    expect(me.usage.activeTasks).toBe(1);
    const usage = (await replicaA.inject({ method: 'GET', url: '/v1/usage', headers: bearer(t.key) })).json();
    // The lost lease ran 3 heartbeat intervals before it expired.
    expect(usage.usage.agentMinutes.leased).toBeCloseTo((3 * HEARTBEAT_MS) / 60_000, 6);
  });

  test.each(['limited', 'suspended'])('a %s tenant is told to stop at its next heartbeat', async (status) => {
    const t = await fx.tenant('pro');
    expect((await admit(replicaA, t.key, 'work')).decision).toBe('allow');
    await fx.pool.query('UPDATE control.tenants SET status = $2 WHERE id = $1', [t.id, status]);
    now += HEARTBEAT_MS;
    expect(await beat(replicaB, t.key, 'work')).toEqual({
      action: 'stop',
      reason: `tenant-${status}`,
      detail: `tenant is ${status}`,
    });
    // A stopped lease is ended: its slot is free and a late release finds nothing.
    expect(await post(replicaA, t.key, '/v1/admission/work/release')).toEqual({ released: false });
  });

  test('reported usage larger than leased time counts toward the quota', async () => {
    const t = await fx.tenant('free');
    expect((await admit(replicaA, t.key, 'r')).decision).toBe('allow');
    const quota = getTier('free').agentMinutesPerMonth;
    const reported = await replicaB.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: bearer(t.key),
      payload: { agentMinutes: quota },
    });
    expect(reported.statusCode).toBe(202);
    now += HEARTBEAT_MS;
    expect(await beat(replicaA, t.key, 'r')).toMatchObject({ action: 'stop', reason: 'agent-minutes' });
  });

  test("a task past its tier's maximum runtime is told to stop within one heartbeat", async () => {
    const t = await fx.tenant('free');
    expect((await admit(replicaA, t.key, 'long')).decision).toBe('allow');
    const started = now;
    const maxMs = getTier('free').maxTaskMinutes * 60_000;
    let answer: { action: string; reason?: string; detail?: string };
    do {
      now += HEARTBEAT_MS;
      answer = await beat(replicaB, t.key, 'long');
    } while (answer.action === 'continue' && now - started < maxMs + 5 * HEARTBEAT_MS);
    expect(answer).toEqual({
      action: 'stop',
      reason: 'max-runtime',
      detail: "task ran past the tier's 10 minute maximum",
    });
    expect(now - started).toBeGreaterThanOrEqual(maxMs);
    expect(now - started).toBeLessThan(maxMs + HEARTBEAT_MS);
  });

  test('a tenant cannot heartbeat or release another tenant’s lease', async () => {
    const a = await fx.tenant('pro');
    const b = await fx.tenant('pro');
    expect((await admit(replicaA, a.key, 'shared-name')).decision).toBe('allow');
    expect(await beat(replicaA, b.key, 'shared-name')).toMatchObject({
      action: 'stop',
      reason: 'lease-lost',
    });
    expect(await post(replicaA, b.key, '/v1/admission/shared-name/release')).toEqual({ released: false });
    expect(await beat(replicaA, a.key, 'shared-name')).toMatchObject({ action: 'continue' });
  });

  test('released leases and reported usage reach the catalog hourly, and the larger figure bills', async () => {
    const t = await fx.tenant('pro');
    const started = now;
    expect((await admit(replicaA, t.key, 'billed')).decision).toBe('allow');
    now += HEARTBEAT_MS;
    await beat(replicaB, t.key, 'billed');
    now += HEARTBEAT_MS / 2;
    expect(await post(replicaA, t.key, '/v1/admission/billed/release')).toEqual({ released: true });
    const reported = await replicaB.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: { ...bearer(t.key), 'idempotency-key': 'billed-1' },
      payload: { agentMinutes: 1, apiCalls: 9 },
    });
    expect(reported.statusCode).toBe(202);
    await Promise.all([replicaA.flushUsage(), replicaB.flushUsage()]);
    // Leases follow the test's clock, usage reports the real one: the window covers both.
    const window = {
      from: new Date(Math.min(started, Date.now()) - 3_600_000),
      to: new Date(Math.max(now, Date.now()) + 3_600_000),
      tenantIds: [t.id],
    };
    const totals = (await billableUsageByTenant(fx.pool, window)).get(t.id);
    expect(totals?.leasedAgentMinutes).toBeCloseTo((1.5 * HEARTBEAT_MS) / 60_000, 3);
    expect(totals?.reportedAgentMinutes).toBe(1);
    expect(totals?.apiCalls).toBe(9);
    const hours = await billableUsageByHour(fx.pool, window);
    expect(totals?.agentMinutes).toBeCloseTo(
      hours.reduce((sum, h) => sum + Math.max(h.reportedAgentMinutes, h.leasedAgentMinutes), 0),
      6,
    );
  });

  test('the memory store applies the same lease rules when Redis is not configured', async () => {
    const memory = await fx.server({ LEASE_HEARTBEAT_MS: String(HEARTBEAT_MS) }, { redis: null, clock });
    const t = await fx.tenant('free');
    expect((await admit(memory, t.key, 'm')).decision).toBe('allow');
    now += HEARTBEAT_MS;
    expect((await beat(memory, t.key, 'm')).action).toBe('continue');
    now += 3 * HEARTBEAT_MS;
    expect(await beat(memory, t.key, 'm')).toMatchObject({ action: 'stop', reason: 'lease-lost' });
    expect((await admit(memory, t.key, 'n')).decision).toBe('allow');
  });
});

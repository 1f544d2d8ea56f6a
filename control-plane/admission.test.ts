import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { recordLeaseRuns } from '../tenants/metering/lease-minutes.ts';
import { getTier } from '../tenants/tiers.ts';
import { billingMonth } from './tenant-cache.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;

beforeAll(async () => {
  fx = await createFixture('admission');
  app = await fx.server();
});
afterAll(() => fx.close());

async function admit(key: string, taskId: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/admission',
    headers: bearer(key),
    payload: { taskId },
  });
  expect(res.statusCode).toBe(200);
  const body = res.json() as { decision: string; reason?: string; lease?: unknown };
  // The lease itself is checked in lease.test.ts; here only the decision matters.
  const { lease: _lease, ...decision } = body;
  return decision;
}

describe('admission', () => {
  test('allows up to the tier concurrentTasks, denies the next, and a release frees a slot', async () => {
    const t = await fx.tenant('starter');
    const limit = getTier('starter').concurrentTasks;
    for (let i = 0; i < limit; i++) expect(await admit(t.key, `task-${i}`)).toEqual({ decision: 'allow' });
    expect(await admit(t.key, 'one-too-many')).toEqual({
      decision: 'deny',
      reason: `concurrent tasks at the tier limit (${limit}/${limit})`,
    });
    // A task that already holds a slot is allowed again rather than taking a second one.
    expect(await admit(t.key, 'task-0')).toEqual({ decision: 'allow' });
    const release = await app.inject({
      method: 'POST',
      url: '/v1/admission/task-0/release',
      headers: bearer(t.key),
    });
    expect(release.json()).toEqual({ released: true });
    const again = await app.inject({
      method: 'POST',
      url: '/v1/admission/task-0/release',
      headers: bearer(t.key),
    });
    expect(again.json()).toEqual({ released: false });
    expect(await admit(t.key, 'one-too-many')).toEqual({ decision: 'allow' });
  });

  test.each(['limited', 'suspended', 'provisioning'])('denies a %s tenant', async (status) => {
    const t = await fx.tenant('pro', status);
    expect(await admit(t.key, 'task-1')).toEqual({ decision: 'deny', reason: `tenant is ${status}` });
  });

  test('denies once the monthly agent-minutes quota is used up', async () => {
    const t = await fx.tenant('free');
    const quota = getTier('free').agentMinutesPerMonth;
    const used = await app.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: bearer(t.key),
      payload: { agentMinutes: quota - 1 },
    });
    expect(used.statusCode).toBe(202);
    expect(await admit(t.key, 'a')).toEqual({ decision: 'allow' });
    await app.inject({ method: 'POST', url: '/v1/admission/a/release', headers: bearer(t.key) });
    await app.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: bearer(t.key),
      payload: { agentMinutes: 1 },
    });
    expect(await admit(t.key, 'b')).toEqual({
      decision: 'deny',
      reason: `monthly agent-minutes quota used up (${quota}/${quota})`,
    });
  });

  test('denies once the monthly API-call quota is used up, counting usage already in the catalog', async () => {
    const t = await fx.tenant('free');
    const quota = getTier('free').apiCallsPerMonth;
    // Usage persisted before this process started (e.g. after a Redis restart) is seeded from PostgreSQL.
    await fx.pool.query(`INSERT INTO control.usage (tenant_id, day, api_calls) VALUES ($1, $2, $3)`, [
      t.id,
      `${billingMonth()}-01`,
      quota,
    ]);
    expect(await admit(t.key, 'x')).toEqual({
      decision: 'deny',
      reason: `monthly API-call quota used up (${quota}/${quota})`,
    });
  });

  test('denies once the billed figure reaches the quota, though reported and leased month totals each fall short', async () => {
    const t = await fx.tenant('free');
    const quota = getTier('free').agentMinutesPerMonth;
    // Hour 1: reported 60% of the quota, leased nothing. Hour 2: leased 40%, reported nothing. Billing
    // charges the larger figure of each hour, so the month bills 100%.
    const first = Date.parse(`${billingMonth()}-01T01:00:00Z`);
    await fx.pool.query(
      `INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes) VALUES ($1, to_timestamp($2 / 1000.0), $3)`,
      [t.id, first, quota * 0.6],
    );
    await recordLeaseRuns(fx.pool, [
      {
        tenantId: t.id,
        taskId: 'earlier',
        startedAt: first + 3_600_000,
        until: first + 3_600_000 + quota * 0.4 * 60_000,
      },
    ]);
    expect(await admit(t.key, 'x')).toEqual({
      decision: 'deny',
      reason: `monthly agent-minutes quota used up (${quota}/${quota})`,
    });
  });

  test('rejects a task id that is not a plain token', async () => {
    const t = await fx.tenant('pro');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(t.key),
      payload: { taskId: 'has space' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/^invalid body\.taskId: must be 1 to 128 characters/);
  });

  test('the memory store applies the same rules when Redis is not configured', async () => {
    const memoryApp = await fx.server({}, { redis: null });
    const t = await fx.tenant('free');
    const first = await memoryApp.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(t.key),
      payload: { taskId: 'm1' },
    });
    const second = await memoryApp.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(t.key),
      payload: { taskId: 'm2' },
    });
    expect(first.json()).toMatchObject({ decision: 'allow', lease: { taskId: 'm1' } });
    expect(second.json()).toEqual({ decision: 'deny', reason: 'concurrent tasks at the tier limit (1/1)' });
  });
});

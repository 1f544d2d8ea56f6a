import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type LeaseStore, MemoryLeaseStore, RedisLeaseStore } from './lease-store.ts';
import { REDIS_TEST_URL } from './testing/fixture.ts';

const TTL_MS = 90_000;
let redis: Redis;
const prefix = `cptest:lease-store:${randomBytes(4).toString('hex')}:`;
let now = Date.parse('2026-11-24T12:00:00Z');
const clock = () => now;
const limits = {
  concurrentTasks: 2,
  agentMinutesPerMonth: 10,
  apiCallsPerMonth: 1000,
  reportedAgentMinutes: 0,
  reportedApiCalls: 0,
};

beforeAll(async () => {
  redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const stores: [string, () => LeaseStore][] = [
  ['redis', () => new RedisLeaseStore(redis, { ttlMs: TTL_MS, clock, keyPrefix: prefix })],
  ['memory', () => new MemoryLeaseStore({ ttlMs: TTL_MS, clock })],
];

describe.each(stores)('%s lease store', (kind, make) => {
  const tenant = `t-${kind}`;
  test('leased minutes alone use up the quota of a tenant that never reports usage', async () => {
    const store = make();
    expect((await store.grant(tenant, '2026-11', 'a', limits)).granted).toBe(true);
    for (let i = 0; i < 9; i++) {
      now += 60_000;
      expect((await store.heartbeat(tenant, '2026-11', 'a')).live).toBe(true);
    }
    expect(await store.leasedMinutes(tenant, '2026-11')).toBeCloseTo(9, 6);
    expect((await store.grant(tenant, '2026-11', 'b', limits)).granted).toBe(true);
    now += 30_000;
    const beat = await store.heartbeat(tenant, '2026-11', 'a');
    expect(beat).toMatchObject({ live: true });
    // Task b ran 30 s without a beat yet: counted once it beats or ends.
    expect(await store.end(tenant, '2026-11', 'b')).toBe(true);
    expect(await store.leasedMinutes(tenant, '2026-11')).toBeCloseTo(10, 6);
    expect(await store.grant(tenant, '2026-11', 'c', limits)).toEqual({
      granted: false,
      reason: 'agent-minutes',
      value: expect.closeTo(10, 6),
    });
  });

  test('an expired lease counts up to its expiry and frees its slot', async () => {
    const store = make();
    const id = `${tenant}-exp`;
    await store.grant(id, '2026-11', 'x', limits);
    await store.grant(id, '2026-11', 'y', limits);
    expect((await store.grant(id, '2026-11', 'z', limits)).granted).toBe(false);
    now += TTL_MS + 1;
    expect(await store.activeLeases(id)).toBe(0);
    expect((await store.grant(id, '2026-11', 'z', limits)).granted).toBe(true);
    expect(await store.leasedMinutes(id, '2026-11')).toBeCloseTo((2 * TTL_MS) / 60_000, 6);
    expect((await store.heartbeat(id, '2026-11', 'x')).live).toBe(false);
  });

  test("a tenant's live leases list start, last heartbeat and expiry; ended and expired ones drop out", async () => {
    const store = make();
    const id = `${tenant}-list`;
    const other = `${tenant}-other`;
    const started = now;
    await store.grant(id, '2026-11', 'first', limits);
    now += 1_000;
    await store.grant(id, '2026-11', 'second', limits);
    await store.grant(other, '2026-11', 'not-mine', limits);
    now += 20_000;
    await store.heartbeat(id, '2026-11', 'first');
    expect(await store.liveLeases(id)).toEqual([
      { taskId: 'first', startedAt: started, lastBeatAt: now, expiresAt: now + TTL_MS },
      {
        taskId: 'second',
        startedAt: started + 1_000,
        lastBeatAt: started + 1_000,
        expiresAt: started + 1_000 + TTL_MS,
      },
    ]);
    await store.end(id, '2026-11', 'first');
    expect((await store.liveLeases(id)).map((l) => l.taskId)).toEqual(['second']);
    now = started + 1_000 + TTL_MS;
    expect(await store.liveLeases(id)).toEqual([]);
  });
});

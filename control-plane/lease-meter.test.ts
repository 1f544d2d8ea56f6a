import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { billableUsageByHour, monthWindow } from '../tenants/metering/billable-usage.ts';
import {
  createCatalogDatabase,
  insertCatalogTenants,
  type TestDatabase,
  uniqueTenantId,
} from '../tenants/testing/pg.ts';
import { LeaseMeter } from './lease-meter.ts';
import { ENDED_HANDOVER_MS, type LeaseMeterSink, RedisLeaseStore } from './lease-store.ts';
import { REDIS_TEST_URL } from './testing/fixture.ts';

const TTL_MS = 90_000;
const MONTH = '2026-12';
const prefix = `cptest:lease-meter:${randomBytes(4).toString('hex')}:`;
const limits = {
  concurrentTasks: 5,
  agentMinutesPerMonth: 100_000,
  apiCallsPerMonth: 1_000_000,
  reportedAgentMinutes: 0,
  reportedApiCalls: 0,
};
let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
let now = Date.parse('2026-12-02T09:50:00Z');
const clock = () => now;
const meters: LeaseMeter[] = [];

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('lease_meter', 6));
  redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
afterAll(async () => {
  for (const meter of meters) await meter.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await pool?.end();
  await db?.drop();
});

async function tenant(): Promise<string> {
  const id = uniqueTenantId('meter');
  await insertCatalogTenants(pool, [id]);
  return id;
}

/** A replica: a lease store on the shared Redis whose meter writes to the catalog. */
function replica(catalog: pg.Pool = pool) {
  let store: RedisLeaseStore | undefined;
  const meter = new LeaseMeter(catalog, {
    flushMs: 3_600_000,
    logger: pino({ level: 'silent' }),
    sweep: () => store!.sweepAll(MONTH),
  });
  meters.push(meter);
  store = new RedisLeaseStore(redis, { ttlMs: TTL_MS, clock, keyPrefix: prefix, meter });
  return { store, meter };
}

/** A process that dies right after Redis answered: nothing it learns reaches the catalog. */
function dyingReplica() {
  const lost: LeaseMeterSink = { ran() {}, ended() {} };
  return new RedisLeaseStore(redis, { ttlMs: TTL_MS, clock, keyPrefix: prefix, meter: lost });
}

const leasedByHour = async (id: string) =>
  (await billableUsageByHour(pool, { ...monthWindow(MONTH), tenantIds: [id] })).map((h) => [
    h.hour,
    h.leasedAgentMinutes,
  ]);

test('a lease beaten on two replicas across an hour boundary is in the catalog once, hour by hour', async () => {
  const id = await tenant();
  const a = replica();
  const b = replica();
  now = Date.parse('2026-12-02T09:55:00Z');
  const started = now;
  await a.store.grant(id, MONTH, 'job', limits);
  for (let i = 0; i < 6; i++) {
    now += 60_000;
    await (i % 2 === 0 ? a : b).store.heartbeat(id, MONTH, 'job');
  }
  // Both replicas write the live lease; then B ends it, and before B has written the end, A (once the
  // handover window has passed) hands the same ended lease over too.
  await Promise.all([a.meter.flush(), b.meter.flush()]);
  now += 30_000;
  expect(await b.store.end(id, MONTH, 'job')).toBe(true);
  const endedAt = now;
  now += ENDED_HANDOVER_MS;
  await a.store.leasedMinutes(id, MONTH);
  expect(a.meter.pendingCount).toBeGreaterThan(0);
  await Promise.all([a.meter.flush(), b.meter.flush()]);
  expect(await leasedByHour(id)).toEqual([
    ['2026-12-02T09:00:00.000Z', 5],
    ['2026-12-02T10:00:00.000Z', 1.5],
  ]);
  expect(await a.store.leasedMinutes(id, MONTH)).toBeCloseTo((endedAt - started) / 60_000, 6);
  expect(await redis.zcard(`${prefix}lease:{${id}}:ended`)).toBe(0);
});

test('a lease ended by a process that died before writing it is written by the next call for the tenant', async () => {
  const id = await tenant();
  const dying = dyingReplica();
  await dying.grant(id, MONTH, 'crash', limits);
  now += 72_000;
  expect(await dying.end(id, MONTH, 'crash')).toBe(true);
  expect(await leasedByHour(id)).toEqual([]);
  // Once the ended lease has gone unwritten for the handover window, the survivor's first call for the
  // tenant hands it over; written once, then forgotten.
  now += ENDED_HANDOVER_MS;
  const survivor = replica();
  await survivor.store.grant(id, MONTH, 'next', limits);
  await survivor.meter.flush();
  await survivor.meter.flush();
  expect(await leasedByHour(id)).toEqual([['2026-12-02T10:00:00.000Z', 1.2]]);
  expect(await redis.zcard(`${prefix}lease:{${id}}:ended`)).toBe(0);
  await survivor.store.end(id, MONTH, 'next');
});

test('an ended lease stays in Redis while the catalog is down, and is written once it is back', async () => {
  const id = await tenant();
  const down = new pg.Pool({ connectionString: 'postgresql://postgres@127.0.0.1:1/none', max: 1 });
  down.on('error', () => {});
  try {
    const cut = replica(down);
    await cut.store.grant(id, MONTH, 'outage', limits);
    now += 60_000;
    expect(await cut.store.end(id, MONTH, 'outage')).toBe(true);
    await cut.meter.flush();
    expect(await redis.zcard(`${prefix}lease:{${id}}:ended`)).toBe(1);
  } finally {
    await down.end();
  }
  // Its own process keeps retrying; any replica's sweep takes it once the handover window has passed.
  now += ENDED_HANDOVER_MS;
  const healthy = replica();
  await healthy.meter.flush();
  expect(await leasedByHour(id)).toEqual([['2026-12-02T10:00:00.000Z', 1]]);
  expect(await redis.zcard(`${prefix}lease:{${id}}:ended`)).toBe(0);
});

test('a lease that expires while its tenant makes no further call is counted to its expiry by the sweep', async () => {
  const id = await tenant();
  const a = replica();
  await a.store.grant(id, MONTH, 'silent', limits);
  now += TTL_MS + 1_000;
  // A fresh replica sweeps on its first flush; no call for the tenant is made.
  const sweeper = replica();
  await sweeper.meter.flush();
  await sweeper.meter.flush();
  expect(await leasedByHour(id)).toEqual([['2026-12-02T10:00:00.000Z', TTL_MS / 60_000]]);
  expect(await a.store.activeLeases(id)).toBe(0);
});

test('one flush acknowledges its ended leases together, not one Redis round trip after another', async () => {
  // At ~1,000 releases a second the meter gets ~5,000 acknowledgements per 5 s flush; awaited one by one
  // they outlasted the flush interval and the pending map grew without end under the soak.
  const meter = new LeaseMeter(pool, { flushMs: 3_600_000, logger: pino({ level: 'silent' }) });
  meters.push(meter);
  const ids = [await tenant(), await tenant(), await tenant()];
  let inFlight = 0;
  let most = 0;
  const acknowledged: string[] = [];
  for (const [i, id] of ids.entries()) {
    meter.ended(id, [{ taskId: `ack-${i}`, startedAt: now - 60_000, endedAt: now }], async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight--;
      acknowledged.push(id);
    });
  }
  await meter.flush();
  expect(acknowledged.sort()).toEqual([...ids].sort());
  expect(most).toBe(ids.length);
  expect(meter.pendingCount).toBe(0);
});

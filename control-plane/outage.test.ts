import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { buildServer } from './server.ts';
import { bearer, type ControlPlaneFixture, createFixture, testConfig } from './testing/fixture.ts';
import { type CuttableProxy, startProxy } from './testing/tcp-proxy.ts';

let fx: ControlPlaneFixture;
const proxies: CuttableProxy[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  fx = await createFixture('outage');
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const proxy of proxies) await proxy.close();
  await fx.close();
});

/** A log that keeps its lines, to count what an outage writes. */
function capturedLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

async function serverBehind(
  options: { redisProxy?: CuttableProxy; pgProxy?: CuttableProxy; env?: Record<string, string> } = {},
) {
  const { logger, lines } = capturedLogger();
  let redis = fx.redis;
  if (options.redisProxy !== undefined) {
    redis = new Redis({
      port: options.redisProxy.port,
      host: '127.0.0.1',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 50,
    });
    redis.on('error', () => {});
    await new Promise((resolve) => redis.once('ready', resolve));
    cleanups.push(async () => redis.disconnect());
  }
  let pool = fx.pool;
  if (options.pgProxy !== undefined) {
    const url = new URL(fx.db.url);
    url.port = String(options.pgProxy.port);
    pool = new pg.Pool({ connectionString: url.toString(), max: 3, connectionTimeoutMillis: 1_000 });
    pool.on('error', () => {});
    cleanups.push(() => pool.end());
  }
  const app = await buildServer({
    config: testConfig(fx.keyPrefix, { OUTAGE_LOG_INTERVAL_MS: '300', ...options.env }),
    pool,
    cells: fx.cells,
    redis,
    environment: loadEnvironmentConfig('dev'),
    logger,
  });
  cleanups.push(() => app.close());
  return { app, lines };
}

const me = (app: FastifyInstance, key: string) => app.inject({ url: '/v1/me', headers: bearer(key) });
const admit = (app: FastifyInstance, key: string, taskId: string) =>
  app.inject({ method: 'POST', url: '/v1/admission', headers: bearer(key), payload: { taskId } });
const usage = (app: FastifyInstance, key: string, idempotencyKey: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/usage',
    headers: { ...bearer(key), 'idempotency-key': idempotencyKey },
    payload: { apiCalls: 1 },
  });

describe('Redis down', () => {
  test('the hot path answers 503 with Retry-After, logs the outage once, and recovers by itself', async () => {
    const redisProxy = await startProxy(6379);
    proxies.push(redisProxy);
    const { app, lines } = await serverBehind({ redisProxy });
    const t = await fx.tenant('enterprise');
    expect((await me(app, t.key)).statusCode).toBe(200);

    redisProxy.cut();
    const during = [];
    for (let i = 0; i < 30; i++) {
      during.push(
        await me(app, t.key),
        await admit(app, t.key, `down-${i}`),
        await usage(app, t.key, `down-${i}`),
      );
    }
    for (const res of during) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.json()).toEqual({ error: 'the hot store (Redis) is unavailable; retry later' });
    }
    // One line when it starts, then a summary per interval: not one line per refused request.
    expect(lines.filter((l) => /^redis unavailable/.test(l.msg))).toHaveLength(1);
    const summaries = lines.filter((l) => /^redis still unavailable/.test(l.msg));
    expect(lines.filter((l) => /redis/.test(l.msg)).length).toBe(1 + summaries.length);
    expect(summaries.length).toBeLessThan(during.length / 10);
    expect(JSON.stringify(lines)).not.toMatch(/stack/);

    redisProxy.restore();
    await expect.poll(async () => (await me(app, t.key)).statusCode, { timeout: 5_000 }).toBe(200);
    expect((await admit(app, t.key, 'after')).json()).toMatchObject({ decision: 'allow' });
    // Reports refused while Redis was down and retried now count once in both stores.
    for (let i = 0; i < 30; i++) expect((await usage(app, t.key, `down-${i}`)).statusCode).toBe(202);
    expect((await usage(app, t.key, 'down-0')).json()).toEqual({ duplicate: true });
    await expect
      .poll(() => lines.some((l) => /redis available again/.test(l.msg)), { timeout: 3_000 })
      .toBe(true);
    const { rows } = await fx.pool.query(
      'SELECT sum(api_calls)::int AS calls FROM control.usage WHERE tenant_id = $1',
      [t.id],
    );
    const counted = Number(
      await fx.redis.hget(`${fx.keyPrefix}usage:${t.id}:${new Date().toISOString().slice(0, 7)}`, 'apiCalls'),
    );
    expect(counted).toBe(rows[0].calls);
  });
});

describe('PostgreSQL down', () => {
  test('known tenants keep working within the grace window; a key revoked before the outage stays refused', async () => {
    const pgProxy = await startProxy(Number(new URL(fx.db.url).port || 5432));
    proxies.push(pgProxy);
    const { app } = await serverBehind({
      pgProxy,
      env: { KEY_CACHE_TTL_MS: '100', TENANT_CACHE_TTL_MS: '100', CATALOG_OUTAGE_GRACE_MS: '1500' },
    });
    const kept = await fx.tenant('enterprise');
    const revoked = await fx.tenant('enterprise');
    const stranger = await fx.tenant('enterprise');
    expect((await me(app, kept.key)).statusCode).toBe(200);
    expect((await me(app, revoked.key)).statusCode).toBe(200);
    const admin = await fx.token('admin');
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${revoked.id}/api-keys/${revoked.prefix}`,
      headers: bearer(admin),
    });
    expect(revoke.statusCode).toBe(204);

    pgProxy.cut();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Past the TTL: served from the last known state.
    expect((await me(app, kept.key)).statusCode).toBe(200);
    expect((await me(app, revoked.key)).statusCode).toBe(503);
    // Never seen before the outage: cannot be checked, so not admitted.
    expect((await me(app, stranger.key)).statusCode).toBe(503);
    // Usage is refused rather than acknowledged without being committed.
    expect((await usage(app, kept.key, 'pg-down')).statusCode).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Past the grace window the last known state is too old to serve.
    expect((await me(app, kept.key)).statusCode).toBe(503);

    pgProxy.restore();
    await expect.poll(async () => (await me(app, kept.key)).statusCode, { timeout: 5_000 }).toBe(200);
    expect((await me(app, revoked.key)).statusCode).toBe(401);
  });
});

describe('caches across replicas', () => {
  test('a key revoked on replica A is refused by replica B within 1 s', async () => {
    const a = await fx.server({ KEY_CACHE_TTL_MS: '600000' });
    const b = await fx.server({ KEY_CACHE_TTL_MS: '600000' });
    const t = await fx.tenant('enterprise');
    expect((await me(b, t.key)).statusCode).toBe(200);
    const started = Date.now();
    const revoke = await a.inject({
      method: 'DELETE',
      url: `/v1/tenants/${t.id}/api-keys/${t.prefix}`,
      headers: bearer(await fx.token('admin')),
    });
    expect(revoke.statusCode).toBe(204);
    await expect
      .poll(async () => (await me(b, t.key)).statusCode, { timeout: 1_000, interval: 20 })
      .toBe(401);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { buildServer } from './server.ts';
import { bearer, type ControlPlaneFixture, createFixture, testConfig } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let key: string;

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  fx = await createFixture('errors');
  app = await fx.server({ BODY_LIMIT_BYTES: '1024' });
  key = (await fx.tenant('enterprise')).key;
});
afterAll(() => fx.close());

function expectNoStack(body: string) {
  expect(body).not.toMatch(/\bat .+\.(ts|js):\d+/);
  expect(body).not.toMatch(/stack/i);
}

describe('error responses', () => {
  test('malformed JSON is a 400 naming the problem', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: { ...bearer(key), 'content-type': 'application/json' },
      payload: '{"taskId": ',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/JSON/);
    expectNoStack(res.body);
  });

  test('a missing field is a 400 naming the field', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/admission', headers: bearer(key), payload: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid body.taskId: Invalid input: expected string, received undefined',
    });
  });

  test('a body over the limit is a 413', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(key),
      payload: { taskId: 'x'.repeat(2000) },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'Request body is too large' });
  });

  test.each(['text/plain', 'application/x-www-form-urlencoded'])('a %s body is a 415', async (type) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: { ...bearer(key), 'content-type': type },
      payload: 'apiCalls=1',
    });
    expect(res.statusCode).toBe(415);
    expectNoStack(res.body);
  });

  test('an unknown route is a JSON 404', async () => {
    const res = await app.inject({ url: '/v1/nothing-here?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'no route GET /v1/nothing-here' });
  });

  test('an unreachable catalog is a 503 with Retry-After, not a 500', async () => {
    const deadPool = new pg.Pool({
      connectionString: `postgresql://postgres@127.0.0.1:${await closedPort()}/x`,
    });
    const broken = await buildServer({
      config: testConfig(fx.keyPrefix),
      pool: deadPool,
      cells: fx.cells,
      redis: fx.redis,
      environment: loadEnvironmentConfig('dev'),
      logger: pino({ level: 'silent' }),
    });
    try {
      for (const url of ['/v1/me', '/v1/tenants']) {
        const credential = url === '/v1/me' ? key : await fx.token('admin');
        const res = await broken.inject({ url, headers: bearer(credential) });
        expect([url, res.statusCode, res.headers['retry-after']]).toEqual([url, 503, '2']);
        expect(res.json()).toEqual({ error: 'the catalog (PostgreSQL) is unavailable; retry later' });
      }
    } finally {
      await broken.close();
      await deadPool.end();
    }
  });

  test('an unexpected failure is a bare 500 with no stack or internal message', async () => {
    // A database that does not exist: PostgreSQL answers, with an error that is no outage.
    const deadPool = new pg.Pool({
      connectionString: `postgresql://postgres@127.0.0.1:5432/no_such_db_${Date.now()}`,
    });
    const broken = await buildServer({
      config: testConfig(fx.keyPrefix),
      pool: deadPool,
      cells: fx.cells,
      redis: fx.redis,
      environment: loadEnvironmentConfig('dev'),
      logger: pino({ level: 'silent' }),
    });
    try {
      const res = await broken.inject({ url: '/v1/me', headers: bearer(key) });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: 'internal error' });
      expectNoStack(res.body);
    } finally {
      await broken.close();
      await deadPool.end();
    }
  });
});

describe('probes', () => {
  test('/healthz and /readyz answer 200 when PostgreSQL and Redis are up', async () => {
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });

  test('/readyz is 503 when Redis is unreachable', async () => {
    const deadRedis = new Redis({
      port: await closedPort(),
      host: '127.0.0.1',
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    deadRedis.on('error', () => {});
    const notReady = await fx.server({}, { redis: deadRedis });
    const res = await notReady.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().checks.postgres).toBe('ok');
    expect(res.json().checks.redis).not.toBe('ok');
    deadRedis.disconnect();
  });

  test('/metrics exposes request, rate-limit, admission and usage-flush metrics', async () => {
    const metricsApp = await fx.server();
    const t = await fx.tenant('free');
    await metricsApp.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(t.key),
      payload: { taskId: 'a' },
    });
    await metricsApp.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(t.key),
      payload: { taskId: 'b' },
    });
    await metricsApp.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: bearer(t.key),
      payload: { apiCalls: 1 },
    });
    await metricsApp.flushUsage();
    // Twice the free tier's 5/s + 5 burst, all at once: some are refused however slow the machine is
    // (one after another, a loaded CI run spread them past the refill and none was).
    await Promise.all(
      Array.from({ length: 20 }, () => metricsApp.inject({ url: '/v1/me', headers: bearer(t.key) })),
    );
    const res = await metricsApp.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toMatch(
      /control_plane_http_requests_total\{method="POST",route="\/v1\/admission",status="200"\} 2/,
    );
    expect(text).toMatch(
      /control_plane_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/v1\/me"/,
    );
    expect(text).toMatch(/control_plane_rate_limit_rejections_total\{limiter="tenant"\} [1-9]/);
    expect(text).toMatch(/control_plane_admission_decisions_total\{decision="allow",reason="ok"\} 1/);
    expect(text).toMatch(/control_plane_admission_decisions_total\{decision="deny",reason="concurrency"\} 1/);
    expect(text).toMatch(/control_plane_usage_batch_flushes_total\{result="ok"\} 1/);
    expect(text).toMatch(/control_plane_process_cpu_seconds_total/);
  });
});

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;

beforeAll(async () => {
  fx = await createFixture('usage');
  // A long interval: only an explicit flush, the batch size or close() writes.
  app = await fx.server({ USAGE_FLUSH_INTERVAL_MS: '600000' });
});
afterAll(() => fx.close());

function report(server: FastifyInstance, key: string, payload: object, idempotencyKey?: string) {
  return server.inject({
    method: 'POST',
    url: '/v1/usage',
    headers: {
      ...bearer(key),
      ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
    },
    payload,
  });
}

async function stored(tenantId: string) {
  const { rows } = await fx.pool.query<{ minutes: string; calls: string }>(
    `SELECT coalesce(sum(agent_minutes), 0)::text AS minutes, coalesce(sum(api_calls), 0)::text AS calls
       FROM control.usage WHERE tenant_id = $1`,
    [tenantId],
  );
  return { agentMinutes: Number(rows[0]!.minutes), apiCalls: Number(rows[0]!.calls) };
}

describe('usage ingest', () => {
  test('a retried report with the same Idempotency-Key is counted once', async () => {
    const t = await fx.tenant('pro');
    const first = await report(app, t.key, { agentMinutes: 2.5, apiCalls: 10 }, 'report-1');
    const retry = await report(app, t.key, { agentMinutes: 2.5, apiCalls: 10 }, 'report-1');
    expect([first.statusCode, first.json()]).toEqual([202, { duplicate: false }]);
    expect([retry.statusCode, retry.json()]).toEqual([202, { duplicate: true }]);
    await app.flushUsage();
    expect(await stored(t.id)).toEqual({ agentMinutes: 2.5, apiCalls: 10 });
    const me = await app.inject({ url: '/v1/me', headers: bearer(t.key) });
    expect(me.json().usage).toMatchObject({ agentMinutes: 2.5, apiCalls: 10, activeTasks: 0 });
  });

  test('without Redis the in-memory store dedupes the same way', async () => {
    const memoryApp = await fx.server({ USAGE_FLUSH_INTERVAL_MS: '600000' }, { redis: null });
    const t = await fx.tenant('pro');
    expect((await report(memoryApp, t.key, { apiCalls: 2 }, 'm-1')).json()).toEqual({ duplicate: false });
    expect((await report(memoryApp, t.key, { apiCalls: 2 }, 'm-1')).json()).toEqual({ duplicate: true });
    await memoryApp.flushUsage();
    expect((await stored(t.id)).apiCalls).toBe(2);
  });

  test('reports without a key, or with different keys, all count', async () => {
    const t = await fx.tenant('pro');
    await report(app, t.key, { apiCalls: 1 });
    await report(app, t.key, { apiCalls: 1 });
    await report(app, t.key, { apiCalls: 1 }, 'a');
    await report(app, t.key, { apiCalls: 1 }, 'b');
    await app.flushUsage();
    expect(await stored(t.id)).toEqual({ agentMinutes: 0, apiCalls: 4 });
  });

  test('the same key used by two tenants is two reports', async () => {
    const [a, b] = [await fx.tenant('pro'), await fx.tenant('pro')];
    expect((await report(app, a.key, { apiCalls: 3 }, 'shared')).json()).toEqual({ duplicate: false });
    expect((await report(app, b.key, { apiCalls: 3 }, 'shared')).json()).toEqual({ duplicate: false });
    await app.flushUsage();
    expect((await stored(a.id)).apiCalls).toBe(3);
    expect((await stored(b.id)).apiCalls).toBe(3);
  });

  test('PostgreSQL still drops a retry that Redis has forgotten', async () => {
    const t = await fx.tenant('pro');
    await report(app, t.key, { apiCalls: 7 }, 'lost-in-cache');
    await app.flushUsage();
    const idemKeys = await fx.redis.keys(`${fx.keyPrefix}idem:${t.id}:*`);
    expect(idemKeys).toHaveLength(1);
    await fx.redis.del(...idemKeys);
    await report(app, t.key, { apiCalls: 7 }, 'lost-in-cache');
    await app.flushUsage();
    expect((await stored(t.id)).apiCalls).toBe(7);
  });

  test('concurrent reports share group commits of at most USAGE_FLUSH_MAX_REPORTS, each answered once committed', async () => {
    const batched = await fx.server({ USAGE_FLUSH_MAX_REPORTS: '3' });
    const t = await fx.tenant('enterprise');
    const answers = await Promise.all(
      Array.from({ length: 7 }, (_, i) => report(batched, t.key, { apiCalls: 1 }, `group-${i}`)),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(7).fill(202));
    expect(await stored(t.id)).toEqual({ agentMinutes: 0, apiCalls: 7 });
  });

  test('a JSON null body is a 400, not an empty report', async () => {
    const t = await fx.tenant('pro');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: { ...bearer(t.key), 'content-type': 'application/json' },
      payload: 'null',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/^invalid body: /);
    expect(await stored(t.id)).toEqual({ agentMinutes: 0, apiCalls: 0 });
  });

  test.each(['utf-16', 'UTF-16LE', 'iso-8859-1'])('a body declared charset=%s is a 415', async (charset) => {
    const t = await fx.tenant('pro');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/usage',
      headers: { ...bearer(t.key), 'content-type': `application/json; charset=${charset}` },
      payload: '{"apiCalls":1}',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({ error: `unsupported charset '${charset}': send application/json in UTF-8` });
    expect(await stored(t.id)).toEqual({ agentMinutes: 0, apiCalls: 0 });
  });

  test.each([
    [{ agentMinutes: -1 }, /^invalid body\.agentMinutes: Too small/],
    [{ apiCalls: 1.5 }, /^invalid body\.apiCalls: Invalid input: expected int/],
    [{ apiCalls: '3' }, /^invalid body\.apiCalls: Invalid input: expected number, received string/],
    [{ apiCalls: 1, tenantId: 'someone-else' }, /^invalid body: Unrecognized key: "tenantId"/],
  ])('refuses %j with a precise 400', async (payload, message) => {
    const t = await fx.tenant('pro');
    const res = await report(app, t.key, payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(message);
  });

  test('refuses an Idempotency-Key that is too long', async () => {
    const t = await fx.tenant('pro');
    const res = await report(app, t.key, { apiCalls: 1 }, 'k'.repeat(201));
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/^invalid Idempotency-Key header: Too big/);
  });
});

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getTier } from '../tenants/tiers.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let a: { id: string; key: string; prefix: string };
let b: { id: string; key: string; prefix: string };

beforeAll(async () => {
  fx = await createFixture('isolation');
  app = await fx.server({ USAGE_FLUSH_INTERVAL_MS: '600000' });
  a = await fx.tenant('enterprise');
  b = await fx.tenant('enterprise');
});
afterAll(() => fx.close());

const me = async (key: string) => (await app.inject({ url: '/v1/me', headers: bearer(key) })).json();

describe("a tenant's key only ever reaches its own tenant", () => {
  test('GET /v1/me answers for the key owner and ignores any tenant named in the request', async () => {
    const res = await app.inject({ url: `/v1/me?tenant=${b.id}&id=${b.id}`, headers: bearer(a.key) });
    expect(res.json().id).toBe(a.id);
    expect((await me(b.key)).id).toBe(b.id);
  });

  test('POST /v1/usage counts for the key owner only', async () => {
    await app.inject({ method: 'POST', url: '/v1/usage', headers: bearer(a.key), payload: { apiCalls: 5 } });
    await app.flushUsage();
    expect((await me(a.key)).usage.apiCalls).toBe(5);
    expect((await me(b.key)).usage.apiCalls).toBe(0);
    const { rows } = await fx.pool.query(
      'SELECT tenant_id, api_calls::int FROM control.usage WHERE tenant_id = ANY($1)',
      [[a.id, b.id]],
    );
    expect(rows).toEqual([{ tenant_id: a.id, api_calls: 5 }]);
  });

  test("admission and release: A cannot take, see or free B's slots", async () => {
    const [fa, fb] = [await fx.tenant('free'), await fx.tenant('free')];
    const admit = (key: string, taskId: string) =>
      app.inject({ method: 'POST', url: '/v1/admission', headers: bearer(key), payload: { taskId } });
    expect((await admit(fb.key, 'b-task')).json()).toMatchObject({ decision: 'allow' });
    const releaseByA = await app.inject({
      method: 'POST',
      url: '/v1/admission/b-task/release',
      headers: bearer(fa.key),
    });
    expect(releaseByA.json()).toEqual({ released: false });
    expect((await me(fb.key)).usage.activeTasks).toBe(1);
    // B's slot does not count against A, and the same task id is A's own, separate task.
    expect((await admit(fa.key, 'b-task')).json()).toMatchObject({ decision: 'allow' });
    expect((await admit(fb.key, 'b-task-2')).json()).toEqual({
      decision: 'deny',
      reason: `concurrent tasks at the tier limit (1/${getTier('free').concurrentTasks})`,
    });
  });

  test.each([
    ['GET', '/v1/tenants'],
    ['GET', '/v1/tenants/{b}'],
    ['POST', '/v1/tenants'],
    ['PUT', '/v1/tenants/{b}/tier'],
    ['POST', '/v1/tenants/{b}/suspend'],
    ['POST', '/v1/tenants/{b}/resume'],
    ['POST', '/v1/tenants/{b}/api-keys'],
    ['POST', '/v1/tenants/{b}/api-keys/{bprefix}/rotate'],
    ['DELETE', '/v1/tenants/{b}/api-keys/{bprefix}'],
  ] as const)('operator route %s %s refuses a tenant API key', async (method, template) => {
    const url = template.replace('{b}', b.id).replace('{bprefix}', b.prefix);
    const res = await app.inject({ method, url, headers: bearer(a.key), payload: {} });
    expect(res.statusCode).toBe(403);
    expect((await me(b.key)).status).toBe('active');
    expect((await me(b.key)).id).toBe(b.id);
  });

  test("an operator cannot revoke or rotate A's key by naming it under tenant B", async () => {
    const token = await fx.token('admin');
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${b.id}/api-keys/${a.prefix}`,
      headers: bearer(token),
    });
    expect(revoke.statusCode).toBe(404);
    const rotate = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${b.id}/api-keys/${a.prefix}/rotate`,
      headers: bearer(token),
    });
    expect(rotate.statusCode).toBe(404);
    expect((await me(a.key)).id).toBe(a.id);
  });
});

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { transition } from '../tenants/lifecycle/transition.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;

beforeAll(async () => {
  fx = await createFixture('lifecycle_listen');
  // A minute of tenant cache: only the catalog's NOTIFY can make the change visible within this test.
  app = await fx.server({ TENANT_CACHE_TTL_MS: '60000' });
});
afterAll(() => fx.close());

const post = async (key: string, url: string, payload: Record<string, unknown> = {}) =>
  (await app.inject({ method: 'POST', url, headers: bearer(key), payload })).json();

test('a limit committed by another process stops a running task at its next heartbeat, not when the cache ages out', async () => {
  const t = await fx.tenant('pro');
  expect((await post(t.key, '/v1/admission', { taskId: 'listen-1' })).decision).toBe('allow');
  expect(await post(t.key, '/v1/admission/listen-1/heartbeat')).toMatchObject({ action: 'continue' });
  // What the cost guard does, from its own connection: the status change with its audit row and NOTIFY.
  const client = await fx.pool.connect();
  try {
    await client.query('BEGIN');
    await transition(client, { tenantId: t.id, from: 'active', to: 'limited', actor: 'cost-guard' });
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  await expect
    .poll(() => post(t.key, '/v1/admission/listen-1/heartbeat'), { timeout: 5_000, interval: 100 })
    .toMatchObject({ action: 'stop', reason: 'tenant-limited' });
});

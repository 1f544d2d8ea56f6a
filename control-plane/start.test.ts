import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startControlPlane } from './start.ts';
import {
  bearer,
  type ControlPlaneFixture,
  createFixture,
  REDIS_TEST_URL,
  testConfig,
} from './testing/fixture.ts';

let fx: ControlPlaneFixture;

beforeAll(async () => {
  fx = await createFixture('start');
});
afterAll(() => fx.close());

describe('startControlPlane', () => {
  test('listens, and a graceful stop flushes buffered usage before closing the pools', async () => {
    const running = await startControlPlane(
      testConfig(fx.keyPrefix, {
        DATABASE_URL: fx.db.url,
        REDIS_URL: REDIS_TEST_URL,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        USAGE_FLUSH_INTERVAL_MS: '600000',
      }),
    );
    const t = await fx.tenant('pro');
    const res = await fetch(`${running.url}/v1/usage`, {
      method: 'POST',
      headers: { ...bearer(t.key), 'content-type': 'application/json', 'idempotency-key': 'on-shutdown' },
      body: JSON.stringify({ agentMinutes: 1.25, apiCalls: 3 }),
    });
    expect(res.status).toBe(202);
    const before = await fx.pool.query('SELECT 1 FROM control.usage WHERE tenant_id = $1', [t.id]);
    expect(before.rowCount).toBe(0);
    await running.close();
    const { rows } = await fx.pool.query(
      'SELECT agent_minutes::float8 AS minutes, api_calls::int AS calls FROM control.usage WHERE tenant_id = $1',
      [t.id],
    );
    expect(rows).toEqual([{ minutes: 1.25, calls: 3 }]);
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  });
});

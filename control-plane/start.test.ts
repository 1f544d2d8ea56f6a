import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase } from '../tenants/testing/pg.ts';
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
  test('listens, and an accepted report is already committed, and a graceful stop closes the pools', async () => {
    const running = await startControlPlane(
      testConfig(fx.keyPrefix, {
        DATABASE_URL: fx.db.url,
        REDIS_URL: REDIS_TEST_URL,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
      }),
    );
    const t = await fx.tenant('pro');
    const res = await fetch(`${running.url}/v1/usage`, {
      method: 'POST',
      headers: { ...bearer(t.key), 'content-type': 'application/json', 'idempotency-key': 'on-shutdown' },
      body: JSON.stringify({ agentMinutes: 1.25, apiCalls: 3 }),
    });
    expect(res.status).toBe(202);
    // 202 means committed: the report is in PostgreSQL before the answer, not at shutdown.
    const before = await fx.pool.query('SELECT 1 FROM control.usage WHERE tenant_id = $1', [t.id]);
    expect(before.rowCount).toBe(1);
    await running.close();
    const { rows } = await fx.pool.query(
      'SELECT agent_minutes::float8 AS minutes, api_calls::int AS calls FROM control.usage WHERE tenant_id = $1',
      [t.id],
    );
    expect(rows).toEqual([{ minutes: 1.25, calls: 3 }]);
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  });

  test('with SENTRY_DSN, an unexpected error is reported to Sentry and the client sees a bare 500', async () => {
    const envelopes: string[] = [];
    const sentry = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        envelopes.push((req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString());
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((resolve) => sentry.listen(0, '127.0.0.1', resolve));
    const { port } = sentry.address() as AddressInfo;
    const db = await createTestDatabase('sentry');
    const running = await startControlPlane(
      testConfig(fx.keyPrefix, {
        DATABASE_URL: db.url,
        REDIS_URL: REDIS_TEST_URL,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        SENTRY_DSN: `http://public@127.0.0.1:${port}/1`,
      }),
    );
    try {
      // A catalog that lost a table: verifying any key now fails inside the service.
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      await admin.query('ALTER TABLE control.api_keys RENAME TO api_keys_gone');
      await admin.end();
      const res = await fetch(`${running.url}/v1/me`, {
        headers: bearer(`apk_aaaaaaaaaa_${'D'.repeat(43)}`),
      });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: 'internal error' });
    } finally {
      await running.close();
      await new Promise((resolve) => sentry.close(resolve));
      await db.drop();
    }
    const reported = envelopes.join('\n');
    expect(reported).toContain('control.api_keys');
    expect(reported).toContain('does not exist');
  });
});

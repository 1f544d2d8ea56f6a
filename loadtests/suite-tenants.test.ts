import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  type ControlPlaneFixture,
  createFixture,
  TEST_JWT_SECRET,
} from '../control-plane/testing/fixture.ts';
import { runLoadGate } from './gate.ts';
import { STALE_SUITE_TENANT_MS } from './suite-tenants.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let baseUrl: string;
let work: string;

beforeAll(async () => {
  fx = await createFixture('suite_tenants');
  app = await fx.server();
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  work = mkdtempSync(path.join(tmpdir(), 'suite-tenants-'));
  mkdirSync(path.join(work, 'bin'));
  // A k6 that dies the way an OOM kill or `kill -9` leaves it: no summary, no teardown.
  writeFileSync(path.join(work, 'bin', 'k6'), '#!/bin/sh\nkill -9 $$\n');
  chmodSync(path.join(work, 'bin', 'k6'), 0o755);
}, 60_000);
afterAll(async () => {
  rmSync(work, { recursive: true, force: true });
  await fx.close();
});

async function provision(id: string): Promise<void> {
  const token = await fx.token('admin');
  const res = await fetch(`${baseUrl}/v1/tenants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id, tier: 'free' }),
  });
  expect(res.status).toBe(201);
}

const statusOf = async (id: string) =>
  (await fx.pool.query<{ status: string }>('SELECT status::text FROM control.tenants WHERE id = $1', [id]))
    .rows[0]?.status;

test('a run whose k6 was SIGKILLed leaves no suite tenant active, and stale ones of earlier runs are retired too', async () => {
  const runId = 'killed0001';
  // What the killed run's setup had created, a stale tenant of a run long gone, and one of a run in progress.
  const mine = fx.provisionedId(`lg-${runId}`);
  const stale = fx.provisionedId('lg-stale00001');
  const running = fx.provisionedId('lg-running0001');
  for (const id of [mine, stale, running]) await provision(id);
  await fx.pool.query(
    `UPDATE control.tenants SET created_at = now() - $2 * interval '1 millisecond' WHERE id = $1`,
    [stale, STALE_SUITE_TENANT_MS + 60_000],
  );

  const code = await runLoadGate(
    { suite: 'smoke', baseUrl, reportsDir: path.join(work, 'reports') },
    {
      env: { PATH: `${path.join(work, 'bin')}:/usr/bin:/bin`, JWT_SECRET: TEST_JWT_SECRET },
      runId,
      stdout: { write: () => true } as unknown as NodeJS.WritableStream,
    },
  );
  expect(code).toBe(128 + 9);
  expect(await statusOf(mine)).toBe('suspended');
  expect(await statusOf(stale)).toBe('suspended');
  expect(await statusOf(running)).toBe('active');
  const audit = await fx.pool.query<{ actor: string; reason: string }>(
    `SELECT actor, reason FROM control.audit_events WHERE tenant_id = $1 AND to_status = 'suspended'`,
    [mine],
  );
  expect(audit.rows).toEqual([
    {
      actor: 'control-plane:load-gate',
      reason: 'load-gate tenant left active: its run ended without teardown',
    },
  ]);
}, 120_000);

import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { bearer, type ControlPlaneFixture, createFixture } from '../control-plane/testing/fixture.ts';
import { limitTenant, suspendTenant } from '../tenants/suspension.ts';
import { getTier } from '../tenants/tiers.ts';
import { AdmissionError, TaskRunner, TaskStopped } from './task-runner.ts';

const HEARTBEAT_MS = 250;
// On a busy shared machine a beat can be late; a lease lost to that is not what these tests are about.
const EXPIRY_HEARTBEATS = '20';
let fx: ControlPlaneFixture;
let app: FastifyInstance;
let baseUrl: string;
const roles: string[] = [];

beforeAll(async () => {
  fx = await createFixture('runner');
  // The real service on a real port: Fastify, PostgreSQL and Redis. The tenant cache is off so a
  // status written by another process (the cost guard) is seen at the next heartbeat.
  app = await fx.server({
    LEASE_HEARTBEAT_MS: String(HEARTBEAT_MS),
    LEASE_EXPIRY_HEARTBEATS: EXPIRY_HEARTBEATS,
    TENANT_CACHE_TTL_MS: '0',
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const role of roles) await fx.pool.query(`DROP ROLE IF EXISTS "${role}"`);
  await fx.close();
});

/** Resolves on the abort with its reason and the time it happened. */
function aborted(signal: AbortSignal): Promise<{ reason: TaskStopped; at: number }> {
  return new Promise((resolve) => {
    signal.addEventListener('abort', () =>
      resolve({ reason: signal.reason as TaskStopped, at: performance.now() }),
    );
  });
}

/** Runs a task that waits for its signal; resolves with the stop and the ms from the limit to the abort. */
async function runUntilStopped(key: string, taskId: string, trigger: () => Promise<void>) {
  const runner = new TaskRunner({ baseUrl, apiKey: key });
  return runner.run(taskId, async ({ signal, lease }) => {
    expect(lease.heartbeatSeconds).toBe(HEARTBEAT_MS / 1000);
    const stop = aborted(signal);
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 1.5));
    expect(signal.aborted).toBe(false);
    const started = performance.now();
    await trigger();
    // The limit is in force somewhere between the trigger's start and its end: measure from its start
    // when the abort came first, else from its end.
    const inForce = performance.now();
    const { reason, at } = await stop;
    return { reason, ms: at < inForce ? at - started : at - inForce };
  });
}

const deps = () => ({ pool: fx.pool, cells: fx.cells, env: loadEnvironmentConfig('dev') });

describe('a running task is aborted within two heartbeats', () => {
  test('of the tenant being limited', async () => {
    const t = await fx.tenant('pro');
    const { reason, ms } = await runUntilStopped(t.key, 'lim', async () => {
      await limitTenant(deps(), t.id, { actor: 'cost-guard', reason: 'test' });
    });
    expect(reason).toBeInstanceOf(TaskStopped);
    expect(reason.reason).toBe('tenant-limited');
    expect(ms).toBeLessThanOrEqual(2 * HEARTBEAT_MS);
  });

  test('of the tenant being suspended', async () => {
    const t = await fx.tenant('pro');
    roles.push(t.id);
    await fx.pool.query(`CREATE ROLE "${t.id}" LOGIN`);
    const { reason, ms } = await runUntilStopped(t.key, 'sus', async () => {
      await suspendTenant(deps(), t.id, { actor: 'cost-guard', reason: 'test' });
    });
    expect(reason.reason).toBe('tenant-suspended');
    expect(ms).toBeLessThanOrEqual(2 * HEARTBEAT_MS);
  });

  test('of its quota running out', async () => {
    const t = await fx.tenant('free');
    const { reason, ms } = await runUntilStopped(t.key, 'quota', async () => {
      const res = await fetch(`${baseUrl}/v1/usage`, {
        method: 'POST',
        headers: { ...bearer(t.key), 'content-type': 'application/json' },
        body: JSON.stringify({ agentMinutes: getTier('free').agentMinutesPerMonth }),
      });
      expect(res.status).toBe(202);
    });
    expect(reason.reason).toBe('agent-minutes');
    expect(ms).toBeLessThanOrEqual(2 * HEARTBEAT_MS);
  });

  test('of its maximum runtime', async () => {
    // A server whose clock jumps the tier's whole maximum ahead once the task has started; its
    // leases outlive the jump, so the answer is the runtime, not an expiry.
    let offset = 0;
    const ahead = await fx.server(
      {
        LEASE_HEARTBEAT_MS: String(HEARTBEAT_MS),
        LEASE_EXPIRY_HEARTBEATS: '100000',
        TENANT_CACHE_TTL_MS: '0',
      },
      { clock: () => Date.now() + offset },
    );
    await ahead.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(ahead.server.address() as AddressInfo).port}`;
    const t = await fx.tenant('free');
    const runner = new TaskRunner({ baseUrl: url, apiKey: t.key });
    const { reason, ms } = await runner.run('long', async ({ signal }) => {
      const stop = aborted(signal);
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 1.5));
      const jumpedAt = performance.now();
      offset = getTier('free').maxTaskMinutes * 60_000;
      const { reason, at } = await stop;
      return { reason, ms: at - jumpedAt };
    });
    expect(reason.reason).toBe('max-runtime');
    expect(ms).toBeLessThanOrEqual(2 * HEARTBEAT_MS);
  });
});

describe('the runner', () => {
  test('releases its lease when the task ends, so the slot is free again', async () => {
    const t = await fx.tenant('free');
    const runner = new TaskRunner({ baseUrl, apiKey: t.key });
    expect(await runner.run('one', async () => 'done')).toBe('done');
    expect(await runner.run('two', async () => 'again')).toBe('again');
  });

  test('a denied admission throws and runs nothing', async () => {
    const t = await fx.tenant('free');
    const runner = new TaskRunner({ baseUrl, apiKey: t.key });
    let ran = false;
    await runner.run('holder', async () => {
      await expect(
        runner.run('second', async () => {
          ran = true;
        }),
      ).rejects.toThrow(
        new AdmissionError('task second not admitted: concurrent tasks at the tier limit (1/1)'),
      );
    });
    expect(ran).toBe(false);
  });
});

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hashApiKey, revokeApiKey } from '../tenants/api-keys.ts';
import { MemoryHotStore } from './hot-store.ts';
import { ApiKeyCache, TenantStateCache } from './tenant-cache.ts';
import { type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;

beforeAll(async () => {
  fx = await createFixture('tenantcache');
});
afterAll(() => fx.close());

/** The fixture's real pool, whose query answers are held until `release()`: a load that is slow to return. */
function heldPool() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let queried!: () => void;
  const started = new Promise<void>((resolve) => {
    queried = resolve;
  });
  const pool = {
    async query(...args: Parameters<pg.Pool['query']>) {
      const result = await (fx.pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
      queried();
      await gate;
      return result;
    },
  } as unknown as pg.Pool;
  return { pool, started, release };
}

describe('caches and a change made while a load is in flight', () => {
  test('a key revoked while its verification is in flight is not cached as valid', async () => {
    const t = await fx.tenant('pro');
    const held = heldPool();
    const keys = new ApiKeyCache(held.pool, 10_000, 0);
    const hash = hashApiKey(t.key);
    const inFlight = keys.verify(hash, t.key);
    await held.started;
    expect(await revokeApiKey(fx.pool, t.id, t.prefix)).toBe(true);
    keys.invalidatePrefix(t.prefix);
    held.release();
    // The request that raced the revoke may pass; later ones must not.
    expect(await inFlight).toEqual({ tenantId: t.id, prefix: t.prefix });
    expect(keys.peek(hash)).toBeUndefined();
    expect(await keys.verify(hash, t.key)).toBeNull();
  });

  test('a tenant suspended while its state is loading is not cached as active', async () => {
    const t = await fx.tenant('pro');
    const held = heldPool();
    const store = new MemoryHotStore({ idempotencyTtlSeconds: 60 });
    const tenants = new TenantStateCache(held.pool, store, 10_000, 0);
    const inFlight = tenants.get(t.id);
    await held.started;
    await fx.pool.query("UPDATE control.tenants SET status = 'suspended' WHERE id = $1", [t.id]);
    tenants.invalidate(t.id);
    held.release();
    expect((await inFlight)?.status).toBe('active');
    expect((await tenants.get(t.id))?.status).toBe('suspended');
  });
});

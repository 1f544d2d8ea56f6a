import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditTrail } from '../tenants/audit.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let manifestsDir: string;
let admin: { authorization: string };
let viewer: { authorization: string };

beforeAll(async () => {
  fx = await createFixture('operator');
  manifestsDir = await mkdtemp(path.join(os.tmpdir(), 'cp-manifests-'));
  app = await fx.server({ MANIFESTS_DIR: manifestsDir });
  admin = bearer(await fx.token('admin'));
  viewer = bearer(await fx.token('viewer'));
});
afterAll(async () => {
  await fx.close();
  await rm(manifestsDir, { recursive: true, force: true });
});

describe('tenant lifecycle through the operator API', () => {
  let id: string;
  let key: string;

  test('POST /v1/tenants provisions a tenant and shows its key once', async () => {
    id = fx.provisionedId('cpop');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: admin,
      payload: { id, tier: 'starter' },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.tenant).toMatchObject({ id, tier: 'starter', status: 'active' });
    expect(body.apiKey.key).toMatch(/^apk_[a-z0-9]{10}_/);
    key = body.apiKey.key;
    const rerun = await app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: admin,
      payload: { id, tier: 'starter' },
    });
    expect(rerun.statusCode).toBe(200);
    expect(rerun.json().apiKey).toBeUndefined();
    const me = await app.inject({ url: '/v1/me', headers: bearer(key) });
    expect(me.json()).toMatchObject({ id, tier: 'starter', status: 'active' });
  });

  test('viewers list and show tenants but cannot create one', async () => {
    const list = await app.inject({ url: '/v1/tenants', headers: viewer });
    expect(list.json().tenants.map((t: { id: string }) => t.id)).toContain(id);
    const show = await app.inject({ url: `/v1/tenants/${id}`, headers: viewer });
    expect(show.json().tenant).toMatchObject({ id, tier: 'starter', activeApiKeys: 1 });
    const create = await app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: viewer,
      payload: { id: fx.provisionedId('cpview'), tier: 'free' },
    });
    expect(create.statusCode).toBe(403);
  });

  test('bad ids and tiers are 400s naming the value; a missing tenant is a 404', async () => {
    const badId = await app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: admin,
      payload: { id: 'Bad_Id', tier: 'pro' },
    });
    expect(badId.statusCode).toBe(400);
    expect(badId.json().error).toMatch(/invalid tenant id "Bad_Id"/);
    const badTier = await app.inject({
      method: 'PUT',
      url: `/v1/tenants/${id}/tier`,
      headers: admin,
      payload: { tier: 'gold' },
    });
    expect(badTier.statusCode).toBe(400);
    expect(badTier.json().error).toMatch(/unknown tier 'gold'/);
    expect((await app.inject({ url: '/v1/tenants/no-such-tenant', headers: admin })).statusCode).toBe(404);
    const otherTier = await app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: admin,
      payload: { id, tier: 'pro' },
    });
    expect(otherTier.statusCode).toBe(409);
    expect(otherTier.json().error).toMatch(/use change-tier/);
  });

  test('PUT /v1/tenants/:id/tier takes effect on the hot path at once', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: `/v1/tenants/${id}/tier`,
      headers: admin,
      payload: { tier: 'pro' },
    });
    expect(res.statusCode).toBe(200);
    const me = await app.inject({ url: '/v1/me', headers: bearer(key) });
    expect(me.json()).toMatchObject({ tier: 'pro', limits: { requestsPerSecond: 100 } });
    expect(me.headers['ratelimit-limit']).toBe('100');
  });

  test('suspend stops admission at once, resume restores it, both audited', async () => {
    const admit = () =>
      app.inject({ method: 'POST', url: '/v1/admission', headers: bearer(key), payload: { taskId: 't1' } });
    const dry = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/suspend`,
      headers: admin,
      payload: { reason: 'drill', dryRun: true },
    });
    expect(dry.json()).toMatchObject({ changed: false, fromStatus: 'active', toStatus: 'suspended' });
    expect((await admit()).json()).toMatchObject({ decision: 'allow', lease: expect.any(Object) });

    const noReason = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/suspend`,
      headers: admin,
      payload: {},
    });
    expect(noReason.statusCode).toBe(400);
    // PostgreSQL text cannot hold NUL: a 400 naming it, not a 500 after the tenant's sessions were ended.
    const nulReason = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/suspend`,
      headers: admin,
      payload: { reason: 'over\u0000budget' },
    });
    expect(nulReason.statusCode).toBe(400);
    expect(nulReason.json().error).toContain('contains a NUL character');
    expect((await admit()).json()).toMatchObject({ decision: 'allow', lease: expect.any(Object) });
    const suspended = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/suspend`,
      headers: admin,
      payload: { reason: 'cost drill' },
    });
    expect(suspended.json()).toMatchObject({ changed: true, toStatus: 'suspended' });
    expect((await admit()).json()).toEqual({ decision: 'deny', reason: 'tenant is suspended' });

    const resumed = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/resume`,
      headers: admin,
      payload: { reason: 'drill over' },
    });
    expect(resumed.json()).toMatchObject({ changed: true, toStatus: 'active' });
    expect((await admit()).json()).toMatchObject({ decision: 'allow', lease: expect.any(Object) });
    const actions = (await auditTrail(fx.pool, id)).map((e) => [e.action, e.actor]);
    expect(actions).toContainEqual(['tenant.suspended', 'control-plane:test-admin']);
    expect(actions).toContainEqual(['tenant.resumed', 'control-plane:test-admin']);
  });

  test('keys: issue a second one, rotate it, revoke it; unknown tenant is a 404', async () => {
    const issued = await app.inject({ method: 'POST', url: `/v1/tenants/${id}/api-keys`, headers: admin });
    expect(issued.statusCode).toBe(201);
    const second = issued.json() as { key: string; prefix: string };
    expect((await app.inject({ url: '/v1/me', headers: bearer(second.key) })).json().id).toBe(id);
    const rotated = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/api-keys/${second.prefix}/rotate`,
      headers: admin,
    });
    const third = rotated.json() as { key: string; prefix: string };
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${id}/api-keys/${third.prefix}`,
      headers: admin,
    });
    expect(revoke.statusCode).toBe(204);
    expect((await app.inject({ url: '/v1/me', headers: bearer(third.key) })).statusCode).toBe(401);
    const actions = (await auditTrail(fx.pool, id)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['api-key.issued', 'api-key.rotated', 'api-key.revoked']));
    const missing = await app.inject({
      method: 'POST',
      url: '/v1/tenants/no-such-tenant/api-keys',
      headers: admin,
    });
    expect(missing.statusCode).toBe(404);
  });
});

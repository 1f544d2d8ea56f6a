import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_SUBJECT_LENGTH } from './operator-auth.ts';
import { bearer, type ControlPlaneFixture, createFixture, TEST_JWT_SECRET } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let tenantKey: string;
let adminToken: string;

beforeAll(async () => {
  fx = await createFixture('hostile');
  app = await fx.server();
  tenantKey = (await fx.tenant('enterprise')).key;
  adminToken = await fx.token('admin');
});
afterAll(() => fx.close());

/** Every route Fastify has registered, with its full path, read from its own route tree. */
function registeredRoutes(server: FastifyInstance): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of server.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (match === null) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    for (const method of (match[3] ?? '').split(', ').filter((m) => m !== '' && m !== 'HEAD')) {
      routes.push({ method, url: stack.join('') });
    }
  }
  return routes;
}

const HOSTILE = [
  '%00',
  'abc%00def',
  encodeURIComponent('a\u0000b'),
  'x'.repeat(5_000),
  encodeURIComponent('ténant-ü'),
  encodeURIComponent('🙂'),
  '..%2F..%2Fetc%2Fpasswd',
  encodeURIComponent("' OR 1=1 --"),
  encodeURIComponent('apk_aaaaaaaaaa; DROP TABLE control.tenants'),
  '%C0%AE%C0%AE',
  '%FF%FE',
  encodeURIComponent('\u202e\u200b'),
];

describe('every route against hostile path parameters', () => {
  test('the route list comes from Fastify and includes the parameterised routes', () => {
    const urls = registeredRoutes(app).map((r) => `${r.method} ${r.url}`);
    expect(urls).toEqual(
      expect.arrayContaining([
        'DELETE /v1/tenants/:id/api-keys/:prefix',
        'POST /v1/tenants/:id/suspend',
        'POST /v1/admission/:taskId/release',
      ]),
    );
  });

  test('no route answers 5xx, and a bad parameter is a 400 with the { error } shape', async () => {
    const routes = registeredRoutes(app).filter((r) => r.url.includes(':'));
    expect(routes.length).toBeGreaterThanOrEqual(8);
    const failures: string[] = [];
    for (const route of routes) {
      const credential = route.url.startsWith('/v1/tenants') ? adminToken : tenantKey;
      for (const value of HOSTILE) {
        const url = route.url.replace(/:[A-Za-z]+/g, value);
        const res = await app.inject({
          method: route.method as 'GET',
          url,
          headers: bearer(credential),
          ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
        });
        const body = res.json() as Record<string, unknown>;
        const shaped = Object.keys(body).length === 1 && typeof body.error === 'string';
        // Fastify's router answers 414 for a parameter past its maximum length.
        const expected = value.length > 1_000 ? [400, 414] : [400];
        if (!shaped || !expected.includes(res.statusCode)) {
          failures.push(`${route.method} ${url.slice(0, 80)} -> ${res.statusCode} ${res.body.slice(0, 120)}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('every route against hostile Host headers', () => {
  const DOMAIN = 'dev.agents.example.com';
  const HOSTILE_HOSTS = [
    `acme.app.${DOMAIN}@evil.example`,
    'evil.example',
    `app.${DOMAIN}`,
    `www.app.${DOMAIN}`,
    `xn--80ak6aa92e.app.${DOMAIN}`,
    `${'a'.repeat(64)}.app.${DOMAIN}`,
    `pg_catalog.app.${DOMAIN}`,
    `a.b.app.${DOMAIN}`,
    `%61cme.app.${DOMAIN}`,
    `acme.app.${DOMAIN}.evil.example`,
    `api.${DOMAIN}.evil.example`,
    '[::1]:8080',
    "' OR 1=1 --",
    'x'.repeat(5_000),
  ];
  // kubelet and Prometheus reach these by pod IP: they answer on any host.
  const ANY_HOST = new Set(['/healthz', '/readyz', '/metrics']);

  test('with PUBLIC_DOMAIN set, every other route refuses them with 421 in the { error } shape', async () => {
    const strict = await fx.server({ PUBLIC_DOMAIN: DOMAIN });
    const routes = registeredRoutes(strict).filter((r) => !ANY_HOST.has(r.url));
    expect(routes.length).toBeGreaterThanOrEqual(20);
    const failures: string[] = [];
    for (const route of routes) {
      const credential = route.url.startsWith('/v1/tenants') ? adminToken : tenantKey;
      for (const host of HOSTILE_HOSTS) {
        const res = await strict.inject({
          method: route.method as 'GET',
          url: route.url.replace(/:[A-Za-z]+/g, 'acme'),
          headers: { host, ...bearer(credential) },
          ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
        });
        const body = res.json() as Record<string, unknown>;
        const shaped = Object.keys(body).length === 1 && typeof body.error === 'string';
        if (!shaped || res.statusCode !== 421) {
          failures.push(
            `${route.method} ${route.url} host ${host.slice(0, 40)} -> ${res.statusCode} ${res.body.slice(0, 120)}`,
          );
        }
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('operator tokens and headers', () => {
  const sign = (claims: Record<string, unknown>, iat: number, exp: number) =>
    new SignJWT({ role: 'admin', ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  const now = () => Math.floor(Date.now() / 1000);

  test('a token valid for 100 years, or issued long ago, is refused; one within the lifetime passes', async () => {
    const limited = await fx.server({ JWT_MAX_LIFETIME_SECONDS: '3600' });
    const get = async (token: string) =>
      (await limited.inject({ url: '/v1/tenants', headers: bearer(token) })).statusCode;
    expect(await get(await sign({ sub: 'alice' }, now(), now() + 100 * 365 * 86_400))).toBe(401);
    expect(await get(await sign({ sub: 'alice' }, now() - 7_200, now() + 600))).toBe(401);
    expect(await get(await sign({ sub: 'alice' }, now(), now() + 3_600))).toBe(200);
  });

  test('a token without iat is refused', async () => {
    const token = await new SignJWT({ role: 'admin', sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect((await app.inject({ url: '/v1/tenants', headers: bearer(token) })).statusCode).toBe(401);
  });

  test('a 5,000-character sub is refused; one at the bound passes', async () => {
    const long = await sign({ sub: 's'.repeat(5_000) }, now(), now() + 300);
    expect((await app.inject({ url: '/v1/tenants', headers: bearer(long) })).statusCode).toBe(401);
    const bounded = await sign({ sub: 's'.repeat(MAX_SUBJECT_LENGTH) }, now(), now() + 300);
    expect((await app.inject({ url: '/v1/tenants', headers: bearer(bounded) })).statusCode).toBe(200);
  });

  test('oversized headers get 431 with the { error } shape', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${address}/healthz`, { headers: { 'x-padding': 'p'.repeat(20_000) } });
    expect(res.status).toBe(431);
    expect(await res.json()).toEqual({ error: 'request headers too large' });
  });
});

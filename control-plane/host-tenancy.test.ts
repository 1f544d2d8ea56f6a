import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hostRulesOf, resolveHost } from './host-tenancy.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

const DOMAIN = 'dev.agents.example.com';
const API = `api.${DOMAIN}`;
const POD_IP = '10.0.1.57:8080';
const rules = hostRulesOf({ PUBLIC_DOMAIN: DOMAIN, CONSOLE_PUBLIC_URL: 'https://console.example.net' });

describe('what a Host header means', () => {
  test.each([
    [`acme.app.${DOMAIN}`, { kind: 'tenant', tenantId: 'acme' }],
    [`ACME.App.${DOMAIN.toUpperCase()}:443`, { kind: 'tenant', tenantId: 'acme' }],
    [`acme.app.${DOMAIN}.`, { kind: 'tenant', tenantId: 'acme' }],
    [API, { kind: 'operator' }],
    [`${API}:443`, { kind: 'operator' }],
    ['console.example.net', { kind: 'operator' }],
    [`x.acme.app.${DOMAIN}`, { kind: 'unknown', host: `x.acme.app.${DOMAIN}` }],
    [`www.app.${DOMAIN}`, { kind: 'unknown', host: `www.app.${DOMAIN}` }],
    [`xn--acme-9na.app.${DOMAIN}`, { kind: 'unknown', host: `xn--acme-9na.app.${DOMAIN}` }],
    [`app.${DOMAIN}`, { kind: 'unknown', host: `app.${DOMAIN}` }],
    [`acme.app.${DOMAIN}.evil.example`, { kind: 'unknown', host: `acme.app.${DOMAIN}.evil.example` }],
    ['localhost', { kind: 'unknown', host: 'localhost' }],
    [POD_IP, { kind: 'unknown', host: '10.0.1.57' }],
    ['', { kind: 'missing' }],
    ['   ', { kind: 'missing' }],
    [undefined, { kind: 'missing' }],
  ])('%j -> %j', (host, meaning) => {
    expect(resolveHost(host, rules)).toEqual(meaning);
  });

  test.each([
    `evil@acme.app.${DOMAIN}`,
    `acme.app.${DOMAIN}/x`,
    `acme.app.${DOMAIN}\u0000`,
    `ácme.app.${DOMAIN}`,
    `acme .app.${DOMAIN}`,
    `[::1]:8080`,
    `${'a'.repeat(300)}.app.${DOMAIN}`,
    `acme.app.${DOMAIN}:`,
  ])('a malformed host is unknown, never a tenant: %j', (host) => {
    const meaning = resolveHost(host, rules);
    expect(meaning.kind).toBe('unknown');
    if (meaning.kind === 'unknown') expect(meaning.host.length).toBeLessThanOrEqual(100);
  });

  test('without PUBLIC_DOMAIN every host, and no host, is open', () => {
    const open = hostRulesOf({ PUBLIC_DOMAIN: undefined, CONSOLE_PUBLIC_URL: undefined });
    for (const host of [`acme.app.${DOMAIN}`, 'localhost', undefined]) {
      expect(resolveHost(host, open)).toEqual({ kind: 'open' });
    }
  });
});

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let a: { id: string; key: string };
let b: { id: string; key: string };
let admin: string;

/** The host-refusal counter for one surface, read from /metrics as Prometheus scrapes it (by pod IP). */
async function refusals(server: FastifyInstance, surface: 'api' | 'portal'): Promise<number> {
  const res = await server.inject({ method: 'GET', url: '/metrics', headers: { host: POD_IP } });
  expect(res.statusCode).toBe(200);
  const line = new RegExp(`^control_plane_host_tenant_refusals_total\\{surface="${surface}"\\} (\\d+)$`, 'm');
  return Number(line.exec(res.body)?.[1] ?? 0);
}

const tenantHost = (id: string) => `${id}.app.${DOMAIN}`;

beforeAll(async () => {
  fx = await createFixture('host');
  app = await fx.server({ PUBLIC_DOMAIN: DOMAIN });
  [a, b] = [await fx.tenant('pro'), await fx.tenant('pro')];
  admin = await fx.token('admin');
});
afterAll(() => fx.close());

describe('tenant routes on a tenant host', () => {
  test("the host's own key is served", async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: { host: tenantHost(a.id), ...bearer(a.key) },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: a.id });
  });

  test("a valid key of another tenant gets 403, is counted, and spends none of that tenant's rate limit", async () => {
    const before = await refusals(app, 'api');
    for (const url of ['/v1/me', '/v1/usage']) {
      const res = await app.inject({
        method: 'GET',
        url,
        headers: { host: tenantHost(a.id), ...bearer(b.key) },
      });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({ error: `this key belongs to another tenant than ${a.id}` });
      expect(res.headers['ratelimit-limit']).toBeUndefined();
    }
    expect(await refusals(app, 'api')).toBe(before + 2);
  });

  test('an invalid key on a tenant host is a 401, not a host refusal', async () => {
    const before = await refusals(app, 'api');
    const res = await app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: { host: tenantHost(a.id), ...bearer(`${b.key.slice(0, -4)}AAAA`) },
    });
    expect(res.statusCode).toBe(401);
    expect(await refusals(app, 'api')).toBe(before);
  });

  test("operator routes are not served on a tenant's host, even with an admin token", async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/tenants',
      headers: { host: tenantHost(a.id), ...bearer(admin) },
    });
    expect(res.statusCode).toBe(421);
    expect(res.json()).toEqual({ error: `operator routes are served on ${API}, not on a tenant's host` });
  });
});

describe('the api host', () => {
  test('serves the operator routes', async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/tenants/${a.id}`,
      headers: { host: API, ...bearer(admin) },
    });
    expect(res.statusCode).toBe(200);
  });

  test('serves tenant routes for any tenant: the key names the tenant', async () => {
    for (const tenant of [a, b]) {
      const res = await app.inject({
        method: 'GET',
        url: '/v1/me',
        headers: { host: API, ...bearer(tenant.key) },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: tenant.id });
    }
  });
});

describe('unknown and missing hosts', () => {
  test.each(['/v1/me', '/v1/tenants', '/portal/', '/console/', '/no/such/route'])(
    'an unknown host is refused on %s, whatever the credential',
    async (url) => {
      const res = await app.inject({
        method: 'GET',
        url,
        headers: { host: 'evil.example.com', ...bearer(a.key) },
      });
      expect(res.statusCode).toBe(421);
      expect(res.json()).toEqual({
        error: `unknown host "evil.example.com": this service answers on {tenant}.app.${DOMAIN} and ${API}`,
      });
    },
  );

  test('a request with no Host header gets 400 in the { error } shape; probes still answer', async () => {
    const listening = await fx.server({ PUBLIC_DOMAIN: DOMAIN });
    const address = await listening.listen({ port: 0, host: '127.0.0.1' });
    const port = Number(new URL(address).port);
    const raw = (request: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
        let data = '';
        socket.on('data', (chunk) => {
          data += chunk;
        });
        socket.on('error', reject);
        socket.on('close', () => {
          const [head, body = ''] = data.split('\r\n\r\n');
          resolve({ status: Number(head!.split(' ')[1]), body });
        });
      });
    for (const version of ['HTTP/1.1', 'HTTP/1.0']) {
      const refused = await raw(
        `GET /v1/me ${version}\r\nConnection: close\r\nAuthorization: Bearer ${a.key}\r\n\r\n`,
      );
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.body)).toEqual({
        error: `missing Host header: this service answers on {tenant}.app.${DOMAIN} and ${API}`,
      });
      const probe = await raw(`GET /healthz ${version}\r\nConnection: close\r\n\r\n`);
      expect(probe.status).toBe(200);
    }
  });
});

describe('probes and metrics', () => {
  test.each(['/healthz', '/readyz', '/metrics'])(
    '%s answers on the pod IP, as kubelet and Prometheus ask',
    async (url) => {
      const res = await app.inject({ method: 'GET', url, headers: { host: POD_IP } });
      expect(res.statusCode).toBe(200);
    },
  );
});

describe('the portal and the console follow the same host rule', () => {
  /** A CSRF cookie and token pair, as a page load hands them out. */
  async function csrf(host: string): Promise<{ cookie: string; token: string }> {
    const page = await app.inject({ method: 'GET', url: '/portal/', headers: { host } });
    expect(page.statusCode).toBe(200);
    const token = /name="csrf-token" content="([^"]+)"/.exec(page.body)![1]!;
    return { cookie: String(page.headers['set-cookie']).split(';')[0]!, token };
  }

  test("on a tenant's host, another tenant's key signs in to nothing, and is counted", async () => {
    const host = tenantHost(a.id);
    const { cookie, token } = await csrf(host);
    const before = await refusals(app, 'portal');
    const signIn = (key: string) =>
      app.inject({
        method: 'POST',
        url: '/portal/session',
        headers: { host, cookie, 'x-csrf-token': token },
        payload: { key },
      });
    const refused = await signIn(b.key);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ error: `this key belongs to another tenant than ${a.id}` });
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(await refusals(app, 'portal')).toBe(before + 1);

    const own = await signIn(a.key);
    expect(own.statusCode).toBe(200);
    const session = String(own.headers['set-cookie']).split(';')[0]!;
    // The same session presented on the other tenant's host shows the sign-in form, not a's figures.
    const elsewhere = await app.inject({
      method: 'GET',
      url: '/portal/',
      headers: { host: tenantHost(b.id), cookie: session },
    });
    expect(elsewhere.body).toContain('id="api-key"');
    expect(elsewhere.body).not.toContain(a.id);
  });

  test("the console is not served on a tenant's host, and is on the api host", async () => {
    const onTenant = await app.inject({
      method: 'GET',
      url: '/console/login',
      headers: { host: tenantHost(a.id) },
    });
    expect(onTenant.statusCode).toBe(421);
    const onApi = await app.inject({ method: 'GET', url: '/console/login', headers: { host: API } });
    expect(onApi.statusCode).toBe(200);
  });
});

describe('without PUBLIC_DOMAIN (local and dev runs)', () => {
  test("today's behaviour: any host, and the key alone names the tenant", async () => {
    const open = await fx.server();
    for (const host of [tenantHost(a.id), 'localhost', 'evil.example.com']) {
      const res = await open.inject({ method: 'GET', url: '/v1/me', headers: { host, ...bearer(b.key) } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: b.id });
    }
  });
});

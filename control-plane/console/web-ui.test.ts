import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadControlPlaneConfig } from '../config.ts';
import { type ControlPlaneFixture, createFixture, TEST_JWT_SECRET } from '../testing/fixture.ts';
import { parseRoleMap, roleFromClaim } from './oidc.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;

beforeAll(async () => {
  fx = await createFixture('webui');
  app = await fx.server({ CONSOLE_PUBLIC_URL: 'https://console.dev.agents.example.com' });
});
afterAll(async () => {
  await fx.close();
});

describe('portal sign-in', () => {
  test('a sign-in without the CSRF token is refused', async () => {
    const a = await fx.tenant('free');
    const res = await app.inject({ method: 'POST', url: '/portal/session', payload: { key: a.key } });
    expect(res.statusCode).toBe(403);
  });

  test('pages carry a CSP without inline script and are never cached', async () => {
    const res = await app.inject({ method: 'GET', url: '/portal/' });
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  test('the console without OIDC settings says what to configure', async () => {
    const res = await app.inject({ method: 'GET', url: '/console/login' });
    expect(res.body).toContain('OIDC_ISSUER_URL');
    expect((await app.inject({ method: 'GET', url: '/console/tenants' })).headers.location).toBe(
      '/console/login',
    );
  });
});

describe('role from the identity provider', () => {
  test('a list claim grants its strongest mapped role; unknown values grant nothing', () => {
    const map = parseRoleMap('admin=platform-admins,viewer=platform-readers');
    expect(roleFromClaim(['staff', 'platform-readers', 'platform-admins'], map)).toBe('admin');
    expect(roleFromClaim('platform-readers', map)).toBe('viewer');
    expect(roleFromClaim(['admin'], map)).toBeNull();
    expect(roleFromClaim(undefined, parseRoleMap(undefined))).toBeNull();
  });

  test('a malformed role map is one clear line', () => {
    expect(() => parseRoleMap('root=everyone')).toThrow(/invalid OIDC_ROLE_MAP \("root=everyone"\)/);
  });

  test.each([
    [{ OIDC_ISSUER_URL: 'https://idp.example.com' }, /invalid OIDC_CLIENT_ID \(unset\): required/],
    [
      {
        OIDC_ISSUER_URL: 'http://idp.example.com',
        OIDC_CLIENT_ID: 'c',
        CONSOLE_PUBLIC_URL: 'https://c.example.com',
      },
      /must be https:\/\//,
    ],
  ])('OIDC settings are checked at start: %j', (env, message) => {
    expect(() => loadControlPlaneConfig({ JWT_SECRET: TEST_JWT_SECRET, ...env })).toThrow(message);
  });
});

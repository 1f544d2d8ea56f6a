import type { FastifyInstance } from 'fastify';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  bearer,
  type ControlPlaneFixture,
  createFixture,
  TEST_JWT_SECRET,
  testConfig,
} from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const inFiveMinutes = () => Math.floor(Date.now() / 1000) + 300;

beforeAll(async () => {
  fx = await createFixture('auth');
  app = await fx.server();
});
afterAll(() => fx.close());

describe('operator JWTs', () => {
  test.each(['admin', 'operator', 'viewer'])('%s: only writers reach a write route', async (role) => {
    const res = await app.inject({
      method: 'DELETE',
      url: '/v1/tenants/nobody-here/api-keys/apk_0123456789',
      headers: bearer(await fx.token(role)),
    });
    // DELETE is a write: viewers are refused before the handler runs, writers reach it (404: no such key).
    expect(res.statusCode).toBe(role === 'viewer' ? 403 : 404);
    if (role === 'viewer') expect(res.json()).toEqual({ error: "role 'viewer' may only read" });
  });

  test.each([
    ['an expired token', async () => fx.token('admin', { expiresIn: '-1m' })],
    ['a token signed with another secret', async () => fx.token('admin', { secret: 'x'.repeat(40) })],
    ['a token with an unknown role', async () => fx.token('root')],
    ['garbage', async () => 'not.a.jwt'],
    // A token without exp would stay valid until the signing secret is rotated.
    [
      'a token with no expiry',
      async () =>
        new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(secret),
    ],
    [
      'a token signed with HS512 and the right secret',
      async () =>
        new SignJWT({ role: 'admin' })
          .setProtectedHeader({ alg: 'HS512' })
          .setExpirationTime('5m')
          .sign(secret),
    ],
    [
      'an unsigned token (alg none)',
      async () => `${b64({ alg: 'none' })}.${b64({ role: 'admin', exp: inFiveMinutes() })}.`,
    ],
  ])('refuses %s with 401', async (_name, make) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/tenants/whoever/api-keys',
      headers: bearer(await make()),
    });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ error: 'invalid or expired operator token' });
  });

  test('verifies tokens signed with the configured public key (ES256) and refuses HS256 ones', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const keyed = await fx.server({
      JWT_SECRET: '',
      JWT_PUBLIC_KEY: await exportSPKI(publicKey),
      JWT_ALGORITHM: 'ES256',
      JWT_ISSUER: 'https://sso.example.com',
    });
    const sign = (issuer: string) =>
      new SignJWT({ role: 'viewer' })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    const ok = await keyed.inject({
      url: '/v1/tenants',
      headers: bearer(await sign('https://sso.example.com')),
    });
    expect(ok.statusCode).toBe(200);
    const wrongIssuer = await keyed.inject({
      url: '/v1/tenants',
      headers: bearer(await sign('https://evil.example.com')),
    });
    expect(wrongIssuer.statusCode).toBe(401);
    const hs256 = await keyed.inject({ url: '/v1/tenants', headers: bearer(await fx.token('admin')) });
    expect(hs256.statusCode).toBe(401);
  });

  test('viewers may GET and HEAD operator routes', async () => {
    const token = await fx.token('viewer');
    expect((await app.inject({ url: '/v1/tenants', headers: bearer(token) })).statusCode).toBe(200);
    expect(
      (await app.inject({ method: 'HEAD', url: '/v1/tenants', headers: bearer(token) })).statusCode,
    ).toBe(200);
  });

  test('refuses a request with no Authorization header', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/whoever/api-keys' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  test('refuses a tenant API key on operator routes', async () => {
    const t = await fx.tenant('enterprise');
    const res = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${t.id}/api-keys`,
      headers: bearer(t.key),
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatch(/API keys are not accepted/);
  });
});

describe('tenant API keys', () => {
  test('a valid key authenticates and a revoked one stops working at once', async () => {
    const t = await fx.tenant('pro');
    expect((await app.inject({ url: '/v1/me', headers: bearer(t.key) })).statusCode).toBe(200);
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${t.id}/api-keys/${t.prefix}`,
      headers: bearer(await fx.token('operator')),
    });
    expect(revoke.statusCode).toBe(204);
    const after = await app.inject({ url: '/v1/me', headers: bearer(t.key) });
    expect(after.statusCode).toBe(401);
    expect(after.json()).toEqual({ error: 'invalid or revoked API key' });
  });

  test('a rotated key is replaced by the new one', async () => {
    const t = await fx.tenant('pro');
    await app.inject({ url: '/v1/me', headers: bearer(t.key) });
    const rotate = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${t.id}/api-keys/${t.prefix}/rotate`,
      headers: bearer(await fx.token('admin')),
    });
    expect(rotate.statusCode).toBe(200);
    const { key } = rotate.json() as { key: string };
    expect((await app.inject({ url: '/v1/me', headers: bearer(t.key) })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/me', headers: bearer(key) })).json().id).toBe(t.id);
  });

  test.each([
    ['a well-formed unknown key', `apk_zzzzzzzzzz_${'A'.repeat(43)}`],
    ['a malformed key', 'hello'],
    ['an operator JWT', 'eyJhbGciOiJIUzI1NiJ9.e30.x'],
  ])('refuses %s with 401', async (_name, key) => {
    const res = await app.inject({ url: '/v1/me', headers: bearer(key) });
    expect(res.statusCode).toBe(401);
  });

  test('a right prefix with a wrong secret is refused', async () => {
    const t = await fx.tenant('pro');
    const res = await app.inject({ url: '/v1/me', headers: bearer(`${t.prefix}_${'B'.repeat(43)}`) });
    expect(res.statusCode).toBe(401);
  });
});

describe('failed-authentication limit', () => {
  const guess = (remoteAddress: string, prefix = 'aaaaaaaaaa') => ({
    url: '/v1/me',
    remoteAddress,
    headers: bearer(`apk_${prefix}_${'C'.repeat(43)}`),
  });

  test('blocks a guessing address, yet a valid key or operator token from it still passes', async () => {
    const limited = await fx.server({ AUTH_FAILURES_PER_MINUTE: '3', AUTH_BLOCK_SECONDS: '60' });
    const t = await fx.tenant('pro');
    for (let i = 0; i < 3; i++) expect((await limited.inject(guess('10.9.8.7'))).statusCode).toBe(401);
    const blocked = await limited.inject(guess('10.9.8.7'));
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // Not cached on this server yet: verified against the catalog, not refused by the block.
    const valid = await limited.inject({ url: '/v1/me', remoteAddress: '10.9.8.7', headers: bearer(t.key) });
    expect(valid.statusCode).toBe(200);
    const operator = await limited.inject({
      url: '/v1/tenants',
      remoteAddress: '10.9.8.7',
      headers: bearer(await fx.token('admin')),
    });
    expect(operator.statusCode).toBe(200);
  });

  test('guesses at one key prefix from many addresses block that prefix, not its valid key', async () => {
    const limited = await fx.server({ AUTH_FAILURES_PER_MINUTE: '3', AUTH_BLOCK_SECONDS: '60' });
    const t = await fx.tenant('pro');
    const victimPrefix = t.prefix.slice(4);
    for (let i = 0; i < 3; i++) {
      expect((await limited.inject(guess(`10.1.1.${i}`, victimPrefix))).statusCode).toBe(401);
    }
    expect((await limited.inject(guess('10.1.1.99', victimPrefix))).statusCode).toBe(429);
    const valid = await limited.inject({ url: '/v1/me', remoteAddress: '10.1.1.99', headers: bearer(t.key) });
    expect(valid.statusCode).toBe(200);
  });

  test('a forged X-Forwarded-For neither hides the guesser nor locks out the forged address', async () => {
    // One trusted hop: the ingress appends the real client, so only the right-most entry counts.
    const limited = await fx.server({
      AUTH_FAILURES_PER_MINUTE: '3',
      AUTH_BLOCK_SECONDS: '60',
      TRUST_PROXY: '1',
    });
    const t = await fx.tenant('pro');
    for (let i = 0; i < 4; i++) {
      await limited.inject({
        ...guess('10.0.0.2'),
        headers: {
          ...guess('10.0.0.2').headers,
          'x-forwarded-for': `203.0.113.7, 198.51.100.${i}, 192.0.2.66`,
        },
      });
    }
    const guesser = await limited.inject({
      ...guess('10.0.0.2'),
      headers: { ...guess('10.0.0.2').headers, 'x-forwarded-for': '198.51.100.200, 192.0.2.66' },
    });
    expect(guesser.statusCode).toBe(429);
    const victim = await limited.inject({
      url: '/v1/me',
      remoteAddress: '10.0.0.2',
      headers: { ...bearer(t.key), 'x-forwarded-for': '203.0.113.7' },
    });
    expect(victim.statusCode).toBe(200);
    const victimGuessOnce = await limited.inject({
      ...guess('10.0.0.2', 'bbbbbbbbbb'),
      headers: { ...guess('10.0.0.2', 'bbbbbbbbbb').headers, 'x-forwarded-for': '203.0.113.7' },
    });
    expect(victimGuessOnce.statusCode).toBe(401);
  });

  test('TRUST_PROXY=true, which trusts every forged hop, is refused at start-up', () => {
    expect(() => testConfig('x:', { TRUST_PROXY: 'true' })).toThrow(
      /invalid TRUST_PROXY \("true"\).*hop count/,
    );
    expect(testConfig('x:', { TRUST_PROXY: '10.0.0.0/16, 192.168.1.1' }).TRUST_PROXY).toEqual([
      '10.0.0.0/16',
      '192.168.1.1',
    ]);
  });
});

import { describe, expect, test } from 'vitest';
import { ControlPlaneConfigError, loadControlPlaneConfig } from './config.ts';

const SECRET = 's'.repeat(40);

describe('loadControlPlaneConfig', () => {
  test('defaults: embedded PostgreSQL, in-memory store, port 8080', () => {
    const config = loadControlPlaneConfig({ JWT_SECRET: SECRET, DATABASE_URL: '', REDIS_URL: '' });
    expect(config).toMatchObject({ ENV: 'dev', PORT: 8080, DATABASE_URL: undefined, REDIS_URL: undefined });
    // No host rules: the local behaviour, any Host and the key alone names the tenant.
    expect(config.PUBLIC_DOMAIN).toBeUndefined();
  });

  test.each([
    [{ JWT_SECRET: SECRET, PORT: 'eighty' }, /^invalid PORT \("eighty"\): /],
    [{ JWT_SECRET: SECRET, ENV: 'qa' }, /^invalid ENV \("qa"\): /],
    [
      {},
      /^invalid JWT_SECRET \(unset\): set exactly one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL \(0 set\)$/,
    ],
    [{ JWT_SECRET: SECRET, JWT_JWKS_URL: 'https://sso.example.com/jwks' }, /\(2 set\)$/],
    [{ JWT_SECRET: 'short' }, /^invalid JWT_SECRET \(<redacted>\): must be at least 32 characters$/],
    [{ JWT_SECRET: SECRET, REDIS_URL: 'not a url' }, /^invalid REDIS_URL \(<redacted>\): /],
    [
      { JWT_SECRET: SECRET, PUBLIC_DOMAIN: 'https://Agents.example.com' },
      /^invalid PUBLIC_DOMAIN \("https:\/\/Agents.example.com"\): must be a lowercase DNS name/,
    ],
    [
      {
        JWT_SECRET: SECRET,
        PUBLIC_DOMAIN: 'agents.example.com',
        CONSOLE_PUBLIC_URL: 'https://acme.app.agents.example.com',
      },
      /^invalid CONSOLE_PUBLIC_URL \("https:\/\/acme.app.agents.example.com"\): must not be a tenant host/,
    ],
  ])('%j fails with one line naming the variable', (env, message) => {
    expect(() => loadControlPlaneConfig(env)).toThrow(ControlPlaneConfigError);
    expect(() => loadControlPlaneConfig(env)).toThrow(message);
  });
});

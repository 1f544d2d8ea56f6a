import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ApiKeyNotFoundError,
  hashApiKey,
  issueApiKey,
  parseApiKeyPrefix,
  revokeApiKey,
  rotateApiKey,
  verifyApiKey,
} from './api-keys.ts';
import { auditTrail, recordAudit } from './audit.ts';
import { TenantNotFoundError } from './errors.ts';
import { createCatalogDatabase, type TestDatabase } from './testing/pg.ts';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  ({ db: database, pool: pool } = await createCatalogDatabase('api_keys', 4));
  await pool.query(
    "INSERT INTO control.tenants (id, tier, cell_id) VALUES ('acme', 'pro', 'cell-1'), ('globex', 'free', 'cell-1')",
  );
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

describe('key format', () => {
  test('a key is apk_<10>_<43> and its prefix is the public part', async () => {
    const { key, prefix } = await issueApiKey(pool, 'acme');
    expect(key).toMatch(/^apk_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    expect(key.startsWith(`${prefix}_`)).toBe(true);
    expect(parseApiKeyPrefix(key)).toBe(prefix);
  });

  test.each([
    ['empty', ''],
    ['no scheme', 'abc'],
    ['short secret', 'apk_abcdefghij_short'],
    ['uppercase id', `apk_ABCDEFGHIJ_${'a'.repeat(43)}`],
    ['long secret', `apk_abcdefghij_${'a'.repeat(44)}`],
    ['other scheme', `sk_abcdefghij_${'a'.repeat(43)}`],
  ])('parseApiKeyPrefix rejects %s', (_label, key) => {
    expect(parseApiKeyPrefix(key)).toBeNull();
  });

  test('hashApiKey is sha256 hex and differs per key', () => {
    expect(hashApiKey('a')).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey('a')).not.toBe(hashApiKey('b'));
  });
});

describe('storage and verification', () => {
  test('only the hash is stored', async () => {
    const { key, prefix } = await issueApiKey(pool, 'acme');
    const { rows } = await pool.query('SELECT * FROM control.api_keys WHERE prefix = $1', [prefix]);
    expect(rows[0].hash).toBe(hashApiKey(key));
    expect(JSON.stringify(rows[0])).not.toContain(key.slice(prefix.length + 1));
  });

  test('a valid key verifies to its tenant and stamps last_used_at', async () => {
    const { key, prefix } = await issueApiKey(pool, 'acme');
    await expect(verifyApiKey(pool, key)).resolves.toEqual({ tenantId: 'acme', prefix });
    const { rows } = await pool.query('SELECT last_used_at FROM control.api_keys WHERE prefix = $1', [
      prefix,
    ]);
    expect(rows[0].last_used_at).toBeInstanceOf(Date);
  });

  test('a key with the right prefix and a wrong secret is refused', async () => {
    const { prefix } = await issueApiKey(pool, 'acme');
    await expect(verifyApiKey(pool, `${prefix}_${'x'.repeat(43)}`)).resolves.toBeNull();
  });

  test('malformed and unknown keys are refused', async () => {
    await expect(verifyApiKey(pool, 'nope')).resolves.toBeNull();
    await expect(verifyApiKey(pool, `apk_zzzzzzzzzz_${'a'.repeat(43)}`)).resolves.toBeNull();
  });

  test('issuing for an unknown tenant names the tenant', async () => {
    await expect(issueApiKey(pool, 'nobody')).rejects.toThrow(TenantNotFoundError);
    await expect(issueApiKey(pool, 'nobody')).rejects.toThrow(/tenant 'nobody' does not exist/);
  });
});

describe('rotation and revocation', () => {
  test('rotate issues a working key and revokes the old one', async () => {
    const old = await issueApiKey(pool, 'acme');
    const fresh = await rotateApiKey(pool, 'acme', old.prefix);
    expect(fresh.prefix).not.toBe(old.prefix);
    await expect(verifyApiKey(pool, old.key)).resolves.toBeNull();
    await expect(verifyApiKey(pool, fresh.key)).resolves.toEqual({ tenantId: 'acme', prefix: fresh.prefix });
  });

  test('rotating a revoked key, or another tenant key, fails and issues nothing', async () => {
    const old = await issueApiKey(pool, 'acme');
    await expect(rotateApiKey(pool, 'globex', old.prefix)).rejects.toThrow(ApiKeyNotFoundError);
    expect(await revokeApiKey(pool, 'acme', old.prefix)).toBe(true);
    const before = await pool.query('SELECT count(*)::int AS n FROM control.api_keys');
    await expect(rotateApiKey(pool, 'acme', old.prefix)).rejects.toThrow(/has no active api key/);
    const after = await pool.query('SELECT count(*)::int AS n FROM control.api_keys');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  test('revoke is false for an unknown key, an already revoked one, or the wrong tenant', async () => {
    const { key, prefix } = await issueApiKey(pool, 'acme');
    expect(await revokeApiKey(pool, 'globex', prefix)).toBe(false);
    await expect(verifyApiKey(pool, key)).resolves.not.toBeNull();
    expect(await revokeApiKey(pool, 'acme', prefix)).toBe(true);
    expect(await revokeApiKey(pool, 'acme', prefix)).toBe(false);
    expect(await revokeApiKey(pool, 'acme', 'apk_0000000000')).toBe(false);
  });
});

describe('audit', () => {
  test('recordAudit appends an entry that auditTrail reads back', async () => {
    await recordAudit(pool, {
      tenantId: 'globex',
      actor: 'test',
      action: 'tenant.status-changed',
      fromStatus: 'provisioning',
      toStatus: 'active',
      reason: 'ready',
      evidence: { ms: 12 },
    });
    await recordAudit(pool, { tenantId: 'globex', actor: 'test', action: 'api-key.issued' });
    const trail = await auditTrail(pool, 'globex');
    expect(trail.map((e) => e.action)).toEqual(['tenant.status-changed', 'api-key.issued']);
    expect(trail[0]).toMatchObject({ fromStatus: 'provisioning', toStatus: 'active', evidence: { ms: 12 } });
    expect(trail[1]?.evidence).toBeUndefined();
  });
});

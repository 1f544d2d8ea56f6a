import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import pg from 'pg';
import { TenantNotFoundError } from './errors.ts';

/** Thrown when a key named by its prefix is not an active key of the tenant. */
export class ApiKeyNotFoundError extends Error {
  override readonly name = 'ApiKeyNotFoundError';
  constructor(
    readonly tenantId: string,
    readonly prefix: string,
  ) {
    super(`tenant '${tenantId}' has no active api key '${prefix}'`);
  }
}

type Db = pg.Pool | pg.PoolClient;

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 10;
/** 32 random bytes in base64url: 43 characters, 256 bits. */
const SECRET_BYTES = 32;
const KEY_PATTERN = /^(apk_[a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;
/** last_used_at is a hint for operators, so it is written at most once a minute per key. */
const LAST_USED_RESOLUTION_SECONDS = 60;

function newKey(): { key: string; prefix: string } {
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  const prefix = `apk_${id}`;
  return { key: `${prefix}_${randomBytes(SECRET_BYTES).toString('base64url')}`, prefix };
}

/** sha256 of the whole key, hex. The key is 256 bits of randomness, so a slow hash buys nothing. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The public prefix (`apk_<10 chars>`) of a well-formed key, or null; no database needed. */
export function parseApiKeyPrefix(key: string): string | null {
  return KEY_PATTERN.exec(key)?.[1] ?? null;
}

function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof pg.DatabaseError && error.code === '23503';
}

/**
 * A new key and the INSERT that stores its prefix and hash, with values inlined as escaped literals, for
 * callers that batch it into one multi-statement transaction. The key is returned once; never stored.
 */
export function apiKeyInsertStatement(tenantId: string): { key: string; prefix: string; sql: string } {
  const issued = newKey();
  const values = [issued.prefix, tenantId, hashApiKey(issued.key)].map((v) => pg.escapeLiteral(v));
  return {
    ...issued,
    sql: `INSERT INTO control.api_keys (prefix, tenant_id, hash) VALUES (${values.join(', ')})`,
  };
}

/** Issues a new key for the tenant. The key is returned once; only its hash is stored. */
export async function issueApiKey(db: Db, tenantId: string): Promise<{ key: string; prefix: string }> {
  const issued = newKey();
  try {
    await db.query('INSERT INTO control.api_keys (prefix, tenant_id, hash) VALUES ($1, $2, $3)', [
      issued.prefix,
      tenantId,
      hashApiKey(issued.key),
    ]);
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new TenantNotFoundError(tenantId);
    throw error;
  }
  return issued;
}

/** Returns the key's tenant when the key is well formed, known, not revoked and its hash matches. */
export async function verifyApiKey(
  db: Db,
  key: string,
): Promise<{ tenantId: string; prefix: string } | null> {
  const prefix = parseApiKeyPrefix(key);
  if (prefix === null) return null;
  const { rows } = await db.query<{ tenant_id: string; hash: string; stale: boolean }>(
    `SELECT tenant_id, hash,
            (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2)) AS stale
       FROM control.api_keys WHERE prefix = $1 AND revoked_at IS NULL`,
    [prefix, LAST_USED_RESOLUTION_SECONDS],
  );
  const row = rows[0];
  if (!row) return null;
  const expected = Buffer.from(row.hash, 'hex');
  const actual = Buffer.from(hashApiKey(key), 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return null;
  if (row.stale) {
    await db.query('UPDATE control.api_keys SET last_used_at = now() WHERE prefix = $1', [prefix]);
  }
  return { tenantId: row.tenant_id, prefix };
}

/**
 * Issues a new key and revokes the old one in one statement, so a failure leaves the old key working.
 * Throws ApiKeyNotFoundError when `prefix` is not an active key of the tenant.
 */
export async function rotateApiKey(
  db: Db,
  tenantId: string,
  prefix: string,
): Promise<{ key: string; prefix: string }> {
  const issued = newKey();
  const { rowCount } = await db.query(
    `WITH old AS (
       UPDATE control.api_keys SET revoked_at = now()
        WHERE prefix = $1 AND tenant_id = $2 AND revoked_at IS NULL
       RETURNING tenant_id)
     INSERT INTO control.api_keys (prefix, tenant_id, hash) SELECT $3, tenant_id, $4 FROM old`,
    [prefix, tenantId, issued.prefix, hashApiKey(issued.key)],
  );
  if (rowCount !== 1) throw new ApiKeyNotFoundError(tenantId, prefix);
  return issued;
}

/** Revokes the key; false when it was not an active key of the tenant. */
export async function revokeApiKey(db: Db, tenantId: string, prefix: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE control.api_keys SET revoked_at = now() WHERE prefix = $1 AND tenant_id = $2 AND revoked_at IS NULL',
    [prefix, tenantId],
  );
  return rowCount === 1;
}

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DatabaseUnavailableError } from '../errors.ts';
import { createTestDatabase, type TestDatabase } from '../testing/pg.ts';
import {
  inTenantTransaction,
  inTransaction,
  libpqEnvironment,
  poolConnection,
  TENANT_LOCK_CLASS,
  withTenantLock,
} from './session.ts';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase('session');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  // The terminated client reports its error on the pool too.
  pool.on('error', () => {});
  await pool.query('CREATE TABLE t (v int)');
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

const heldLocks = async () =>
  (
    await pool.query<{ n: number }>(
      // pg_locks is server-wide: other test files' tenant locks are in other databases.
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [TENANT_LOCK_CLASS],
    )
  ).rows[0]!.n;

describe('inTransaction', () => {
  test('rolls back on an error and rethrows it', async () => {
    await expect(
      inTransaction(pool, async (client) => {
        await client.query('INSERT INTO t VALUES (1)');
        throw new Error('step failed');
      }),
    ).rejects.toThrow('step failed');
    expect((await pool.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(0);
  });

  test('a lost connection reports its own error, not the failed ROLLBACK, and the pool recovers', async () => {
    await expect(
      inTransaction(pool, (client) => client.query('SELECT pg_terminate_backend(pg_backend_pid())')),
    ).rejects.toThrow(/terminating connection due to administrator command/);
    expect(pool.totalCount).toBeLessThanOrEqual(1);
    expect((await inTransaction(pool, (c) => c.query('SELECT 1 AS ok'))).rows).toEqual([{ ok: 1 }]);
  });
});

describe('withTenantLock', () => {
  test('holds the tenant lock for the work and frees it after', async () => {
    const during = await withTenantLock(pool, 'lock-a', () => heldLocks());
    expect(during).toBe(1);
    expect(await heldLocks()).toBe(0);
  });

  test('a connection lost while locked fails with its own error, drops the client and frees the lock', async () => {
    await expect(
      withTenantLock(pool, 'lock-b', (client) =>
        client.query('SELECT pg_terminate_backend(pg_backend_pid())'),
      ),
    ).rejects.toThrow(/terminating connection due to administrator command/);
    expect(await heldLocks()).toBe(0);
    expect(await withTenantLock(pool, 'lock-b', async () => 'again')).toBe('again');
  });

  test('a second holder of the same tenant waits for the first', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = withTenantLock(pool, 'lock-c', async () => {
      order.push('first in');
      await gate;
      order.push('first out');
    });
    await new Promise((r) => setTimeout(r, 50));
    const second = inTenantTransaction(pool, 'lock-c', async () => {
      order.push('second in');
    });
    await new Promise((r) => setTimeout(r, 50));
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });
});

describe('connection settings', () => {
  test('come out the same from a URL or from fields, and point libpq tools at the same place', () => {
    const fromUrl = poolConnection(
      new pg.Pool({ connectionString: 'postgresql://ops:p%40ss@db.internal:6432/cat' }),
    );
    const fromFields = poolConnection(
      new pg.Pool({ host: 'db.internal', port: 6432, database: 'cat', user: 'ops', password: 'p@ss' }),
    );
    expect(fromUrl).toEqual({
      host: 'db.internal',
      port: 6432,
      database: 'cat',
      user: 'ops',
      password: 'p@ss',
    });
    expect(fromFields).toEqual(fromUrl);
    expect(libpqEnvironment(fromUrl)).toMatchObject({
      PGHOST: 'db.internal',
      PGPORT: '6432',
      PGDATABASE: 'cat',
      PGUSER: 'ops',
      PGPASSWORD: 'p@ss',
    });
  });

  test('an unreachable server is one line naming it', async () => {
    const dead = new pg.Pool({ connectionString: 'postgresql://postgres@127.0.0.1:1/none', max: 1 });
    await expect(withTenantLock(dead, 'x-1', async () => 1)).rejects.toThrow(
      new DatabaseUnavailableError('PostgreSQL unreachable at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1'),
    );
    await dead.end();
  });
});

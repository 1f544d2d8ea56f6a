import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from './testing/pg.ts';
import { inTransaction } from './transaction.ts';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase('transaction');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  // The terminated client reports its error on the pool too.
  pool.on('error', () => {});
  await pool.query('CREATE TABLE t (v int)');
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

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

import type pg from 'pg';

/**
 * Advisory-lock class of the per-tenant lock (the key is hashtext(tenant id)). The provisioner holds it
 * for a whole reconcile and status changes take it per transaction, so the two never interleave.
 */
export const TENANT_LOCK_CLASS = 7_310_001;

/** Runs `work` in one transaction on one pooled connection: commit on success, roll back on any error. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

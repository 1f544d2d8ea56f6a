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
  // A checked-out client has no 'error' listener, so a dropped connection would crash the process;
  // the failing query rejects anyway, and that error is what the caller gets.
  const ignore = () => {};
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // A lost connection fails the ROLLBACK too: report the first error, and drop the client.
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.removeListener('error', ignore);
    client.release(broken);
  }
}

import pg from 'pg';
import { z } from 'zod';
import { DatabaseUnavailableError } from '../errors.ts';

/**
 * Advisory-lock class of the per-tenant lock (the key is hashtext(tenant id)). Provisioning and
 * offboarding hold it for a whole run and status changes take it per transaction, so they never interleave.
 */
export const TENANT_LOCK_CLASS = 7_310_001;

/** Where a database is, as libpq and pg both take it. */
export interface ConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** @default - none (trust, IAM token or .pgpass) */
  readonly password?: string;
}

const poolOptionsSchema = z.object({
  connectionString: z.string().optional(),
  host: z.string().optional(),
  port: z.coerce.number().int().optional(),
  database: z.string().optional(),
  user: z.string().optional(),
  password: z.unknown().optional(),
});

/** The settings a pool was built with (`pg.Pool#options`), in one shape whichever form it was given. */
export function poolConnection(pool: pg.Pool): ConnectionSettings {
  const o = poolOptionsSchema.parse(pool.options);
  if (o.connectionString) {
    const url = new URL(o.connectionString);
    return {
      host: decodeURIComponent(url.hostname) || 'localhost',
      port: Number(url.port || 5432),
      database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
      user: decodeURIComponent(url.username) || 'postgres',
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    };
  }
  return {
    host: o.host ?? 'localhost',
    port: o.port ?? 5432,
    database: o.database ?? 'postgres',
    user: o.user ?? 'postgres',
    ...(typeof o.password === 'string' ? { password: o.password } : {}),
  };
}

/** pg client settings for these settings. */
export function clientConfig(c: ConnectionSettings): pg.ClientConfig {
  return {
    host: c.host,
    port: c.port,
    database: c.database,
    user: c.user,
    ...(c.password === undefined ? {} : { password: c.password }),
  };
}

/** The environment that points libpq tools (pg_dump, psql, pg_restore) at these settings. */
export function libpqEnvironment(c: ConnectionSettings): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGDATABASE: c.database,
    PGUSER: c.user,
  };
  if (c.password === undefined) delete env.PGPASSWORD;
  else env.PGPASSWORD = c.password;
  return env;
}

/** Connects, naming the server in one line when it cannot be reached. */
export async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (error) {
    if (error instanceof pg.DatabaseError) throw error;
    const c = poolConnection(pool);
    throw new DatabaseUnavailableError(
      `PostgreSQL unreachable at ${c.host}:${c.port}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/**
 * Runs `work` on one pooled connection and always gives it back. A checked-out client has no 'error'
 * listener, so a dropped connection would crash the process; the failing query rejects anyway, and that
 * error is what the caller gets. A connection whose clean-up failed is dropped, not reused.
 */
export async function withConnection<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, spoil: (error: Error) => void) => Promise<T>,
): Promise<T> {
  const client = await connect(pool);
  const ignore = () => {};
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    return await work(client, (error) => {
      broken ??= error;
    });
  } finally {
    client.removeListener('error', ignore);
    client.release(broken);
  }
}

/**
 * Runs `work` in one transaction on `client`: commit on success, roll back on any error. A lost
 * connection fails the ROLLBACK too: the first error is the one reported.
 */
export async function inClientTransaction<T>(
  client: pg.ClientBase,
  work: () => Promise<T>,
  spoil: (error: Error) => void = () => {},
): Promise<T> {
  await client.query('BEGIN');
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await client.query('ROLLBACK').catch(spoil);
    throw error;
  }
  await client.query('COMMIT');
  return result;
}

/** Runs `work` in one transaction on one pooled connection. */
export function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withConnection(pool, (client, spoil) => inClientTransaction(client, () => work(client), spoil));
}

/**
 * Runs `work` holding the tenant's advisory lock for the whole session on one connection: the form
 * for runs whose steps commit one by one (provisioning, offboarding, moves).
 */
export function withTenantLock<T>(
  pool: pg.Pool,
  tenantId: string,
  work: (client: pg.PoolClient, spoil: (error: Error) => void) => Promise<T>,
  options: {
    /**
     * Commits on this session skip the fsync wait until one commits with `SET LOCAL synchronous_commit = on`,
     * which flushes the earlier WAL too. @default false
     */
    readonly asynchronousCommit?: boolean;
  } = {},
): Promise<T> {
  const commit = options.asynchronousCommit ? 'off' : 'on';
  return withConnection(pool, async (client, spoil) => {
    await client.query(
      "SELECT pg_advisory_lock($1, hashtext($2)), set_config('synchronous_commit', $3, false)",
      [TENANT_LOCK_CLASS, tenantId, commit],
    );
    try {
      return await work(client, spoil);
    } finally {
      await client
        .query("SELECT pg_advisory_unlock($1, hashtext($2)), set_config('synchronous_commit', 'on', false)", [
          TENANT_LOCK_CLASS,
          tenantId,
        ])
        .catch(spoil);
    }
  });
}

/**
 * Runs `work` in one transaction holding the tenant's advisory lock until it ends: the form for status
 * changes, which commit all at once.
 */
export function inTenantTransaction<T>(
  pool: pg.Pool,
  tenantId: string,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [TENANT_LOCK_CLASS, tenantId]);
    return work(client);
  });
}

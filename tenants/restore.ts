import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import { z } from 'zod';
import { checkAuditText } from './audit.ts';
import { TenantNotFoundError } from './errors.ts';
import {
  inClientTransaction,
  libpqEnvironment,
  poolConnection,
  withTenantLock,
} from './lifecycle/session.ts';
import { transition } from './lifecycle/transition.ts';
import { verifyArchive } from './offboarding.ts';
import type { SavedSettings } from './suspension.ts';
import { roleSettings, TENANT_GROUP_ROLE } from './tenant-database.ts';
import { parseTenantId } from './tenant-id.ts';
import { getTier } from './tiers.ts';

/** Restore refused, or stopped with nothing changed; one line naming the tenant. */
export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

export interface RestoreDeps {
  /** The catalog database, which is also the tenant's cell today. */
  readonly pool: pg.Pool;
}

const optionsSchema = z.object({
  from: z.string().min(1, 'an archive path is required'),
  actor: z.string().min(1, 'actor must not be empty'),
  reason: z.string().trim().min(1, 'a reason is required'),
  dryRun: z.boolean().default(false),
});

export interface RestoreOptions {
  /** The archive offboarding wrote and recorded in control.tenant_archives. */
  readonly from: string;
  /** Who acts, kept in the audit trail. */
  readonly actor: string;
  /** Why, kept in the audit trail. */
  readonly reason: string;
  /** Check the tenant and the archive, print the plan and change nothing. @default false */
  readonly dryRun?: boolean;
}

export interface RestoreResult {
  readonly tenantId: string;
  readonly dryRun: boolean;
  readonly archive: string;
  /** Rows per table, as recorded with the archive and found again after the restore. */
  readonly rowCounts: Record<string, number>;
  readonly status: string;
  readonly steps: string[];
}

interface ArchiveRow {
  path: string;
  bytes: string;
  sha256: string;
  row_counts: Record<string, number>;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** The catalog's record of this archive, matched on the resolved path. */
async function recordedArchive(db: pg.Pool | pg.PoolClient, id: string, from: string): Promise<ArchiveRow> {
  const { rows } = await db.query<ArchiveRow>(
    'SELECT path, bytes, sha256, row_counts FROM control.tenant_archives WHERE tenant_id = $1',
    [id],
  );
  const wanted = path.resolve(from);
  const row = rows.find((r) => path.resolve(r.path) === wanted);
  if (!row) throw new RestoreError(`${from} is not a recorded archive of tenant '${id}'; nothing changed`);
  return row;
}

/** Size, sha256 and content (a CREATE TABLE and the recorded rows per table) of the file on disk. */
async function checkArchive(id: string, from: string, recorded: ArchiveRow): Promise<void> {
  const size = await stat(from).catch(() => null);
  if (!size) throw new RestoreError(`archive ${from} of tenant '${id}' cannot be read; nothing changed`);
  const sha256 = await sha256File(from);
  if (size.size !== Number(recorded.bytes) || sha256 !== recorded.sha256) {
    throw new RestoreError(
      `archive ${from} of tenant '${id}' has sha256 ${sha256}, the catalog recorded ${recorded.sha256}; nothing changed`,
    );
  }
  try {
    await verifyArchive(from, id, recorded.row_counts);
  } catch (error) {
    throw new RestoreError(`${(error as Error).message}; nothing changed`);
  }
}

async function readTenant(db: pg.Pool | pg.PoolClient, id: string) {
  const { rows } = await db.query<{ status: string; tier: string; schema: boolean; role: boolean }>(
    `SELECT status::text AS status, tier,
            EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role
       FROM control.tenants WHERE id = $1`,
    [id],
  );
  if (!rows[0]) throw new TenantNotFoundError(id);
  return rows[0];
}

function refuseState(id: string, status: string): never {
  throw new RestoreError(
    `tenant '${id}' is ${status}; restore brings back only an archived tenant; nothing changed`,
  );
}

/**
 * One psql transaction: the role (no login, connection limit 0, the tier's settings), the dump, the tenant
 * made owner of what the dump created, and the row counts checked against the archive's record. Any
 * mismatch raises, and nothing of it stays.
 */
function restoreScript(id: string, tierName: string, rowCounts: Record<string, number>) {
  const role = pg.escapeIdentifier(id);
  const literal = pg.escapeLiteral(id);
  const settings = Object.entries(roleSettings(getTier(tierName))).map(
    ([name, value]) => `ALTER ROLE ${role} SET ${name} = ${value};`,
  );
  const before = [
    '\\set ON_ERROR_STOP on',
    `CREATE ROLE ${role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT 0 IN ROLE ${pg.escapeIdentifier(TENANT_GROUP_ROLE)};`,
    ...settings,
    '',
  ].join('\n');
  const tables = Object.keys(rowCounts).sort();
  const checks = tables.map(
    (t) =>
      `  SELECT count(*) INTO n FROM ${role}.${pg.escapeIdentifier(t)};
  IF n <> ${Number(rowCounts[t])} THEN
    RAISE EXCEPTION 'table % holds % rows after the restore, the archive recorded ${Number(rowCounts[t])}', ${pg.escapeLiteral(t)}, n;
  END IF;`,
  );
  const after = `
RESET search_path;
ALTER SCHEMA ${role} OWNER TO ${role};
REVOKE ALL ON SCHEMA ${role} FROM PUBLIC;
DO $restore$
DECLARE
  r record;
  n bigint;
  found text[];
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
            WHERE c.relnamespace = ${literal}::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              -- Identity and serial sequences follow their table.
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel, ${literal});
  END LOOP;
  SELECT array_agg(tablename::text ORDER BY tablename) INTO found FROM pg_tables WHERE schemaname = ${literal};
  IF found IS DISTINCT FROM ${pg.escapeLiteral(`{${tables.join(',')}}`)}::text[] THEN
    RAISE EXCEPTION 'tables after the restore are %, the archive recorded ${tables.join(', ')}', found;
  END IF;
${checks.join('\n')}
END
$restore$;
`;
  return { before, after };
}

/** Runs the archive through psql in a single transaction; the first error line on failure. */
async function runRestore(deps: RestoreDeps, file: string, script: { before: string; after: string }) {
  const child = spawn('psql', ['-X', '-q', '--single-transaction', '-v', 'ON_ERROR_STOP=1'], {
    env: libpqEnvironment(poolConnection(deps.pool)),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const input = new PassThrough();
  // psql exiting early (on the first error) closes its stdin: that is reported through its exit code.
  const feeding = pipeline(input, child.stdin).catch(() => {});
  input.write(script.before);
  try {
    await pipeline(createReadStream(file), createGunzip(), input, { end: false });
  } catch (error) {
    // Ending psql without the script's end leaves its single transaction uncommitted.
    child.kill('SIGTERM');
    await exited;
    throw new RestoreError(
      `archive ${file} cannot be unpacked, nothing was kept: ${(error as Error).message}`,
    );
  }
  input.end(script.after);
  await feeding;
  const code = await exited;
  if (code !== 0) {
    const line = stderr.split('\n').find((l) => l.includes('ERROR')) ?? stderr.trim().split('\n')[0];
    throw new RestoreError(
      `restore of ${file} failed, nothing was kept: ${line?.replace(/^psql:[^E]*/, '')}`,
    );
  }
}

/** Table row counts of the tenant's schema as it is now. */
async function countRows(db: pg.PoolClient, id: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ tablename: string }>(
    'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
    [id],
  );
  const counts: Record<string, number> = {};
  for (const { tablename } of rows) {
    const q = `${pg.escapeIdentifier(id)}.${pg.escapeIdentifier(tablename)}`;
    counts[tablename] = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${q}`)).rows[0]!.n;
  }
  return counts;
}

const sameCounts = (a: Record<string, number>, b: Record<string, number>) =>
  Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((t) => a[t] === b[t]);

/**
 * Brings an archived tenant back from the verified archive offboarding wrote: role, schema and rows, with
 * the row counts checked. It comes back `suspended` (role NOLOGIN, connection limit 0) until an operator
 * resumes it, and its revoked API keys stay revoked. Serialized per tenant; a rerun after a crash between
 * the data and the catalog finishes the catalog part.
 */
export async function restoreTenant(
  deps: RestoreDeps,
  tenantId: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const parsed = optionsSchema.parse(options);
  const id = parseTenantId(tenantId);
  checkAuditText('actor', parsed.actor);
  checkAuditText('reason', parsed.reason);
  const before = await readTenant(deps.pool, id);
  if (before.status !== 'archived') refuseState(id, before.status);
  const recorded = await recordedArchive(deps.pool, id, parsed.from);
  if (before.role && !before.schema) {
    throw new RestoreError(
      `a role named '${id}' already exists without its schema; drop or rename it first; nothing changed`,
    );
  }
  await checkArchive(id, parsed.from, recorded);
  const rowCounts = recorded.row_counts;
  const tables = Object.entries(rowCounts).map(([t, n]) => `${t} ${n}`);
  const steps = [
    `checked ${parsed.from}: sha256 ${recorded.sha256}, ${tables.join(', ') || 'no tables'}`,
    `role ${id} NOLOGIN, CONNECTION LIMIT 0, ${before.tier} settings; schema and rows from the archive, one transaction`,
    'row counts checked against the archive before commit',
    'status suspended; revoked API keys stay revoked; `cost-guard resume` lets it back in',
  ];
  if (parsed.dryRun) {
    return { tenantId: id, dryRun: true, archive: parsed.from, rowCounts, status: before.status, steps };
  }

  return withTenantLock(deps.pool, id, async (client, spoil) => {
    const now = await readTenant(client, id);
    if (now.status !== 'archived') refuseState(id, now.status);
    if (!now.schema) {
      await runRestore(deps, parsed.from, restoreScript(id, now.tier, rowCounts));
    } else if (!sameCounts(await countRows(client, id), rowCounts)) {
      throw new RestoreError(
        `schema '${id}' exists but its rows differ from ${parsed.from}; inspect it before restoring; nothing changed`,
      );
    }
    const saved: SavedSettings = {
      previousStatus: 'archived',
      role: { connectionLimit: getTier(now.tier).database.connectionLimit, canLogin: true },
      suspendedAt: new Date().toISOString(),
    };
    await inClientTransaction(
      client,
      async () => {
        // What resume gives back: LOGIN and the tier's connection limit.
        await client.query(
          `INSERT INTO control.quota_state (tenant_id, period, saved_settings)
           VALUES ($1, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), $2)
           ON CONFLICT (tenant_id) DO UPDATE SET saved_settings = EXCLUDED.saved_settings, updated_at = now()`,
          [id, JSON.stringify(saved)],
        );
        await transition(client, {
          tenantId: id,
          from: 'archived',
          to: 'suspended',
          action: 'tenant.restored',
          actor: parsed.actor,
          reason: parsed.reason,
          evidence: { archive: recorded.path, sha256: recorded.sha256, rowCounts },
        });
      },
      spoil,
    );
    return { tenantId: id, dryRun: false, archive: parsed.from, rowCounts, status: 'suspended', steps };
  });
}

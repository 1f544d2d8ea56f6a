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
import { CELL_SCHEMA, type Cell, type CellDirectory, cellGroupRole } from './cells.ts';
import { TenantNotFoundError } from './errors.ts';
import {
  inClientTransaction,
  libpqEnvironment,
  poolConnection,
  withTenantLock,
} from './lifecycle/session.ts';
import { runSteps, type Step, type StepObserver, type StepResult } from './lifecycle/steps.ts';
import { transition } from './lifecycle/transition.ts';
import { countRows, verifyArchive } from './offboarding.ts';
import type { SavedSettings } from './suspension.ts';
import { roleSettings } from './tenant-database.ts';
import { parseTenantId } from './tenant-id.ts';
import { getTier } from './tiers.ts';

/** Restore refused, or stopped with nothing changed; one line naming the tenant. */
export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

export interface RestoreDeps {
  /** The catalog database. */
  readonly pool: pg.Pool;
  /** The cells; the tenant comes back into the cell its catalog row names. */
  readonly cells: CellDirectory;
  /** Watches the steps (progress, or a simulated crash in tests). @default - none */
  readonly observer?: StepObserver;
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
  /** The cell the tenant is restored into. */
  readonly cellId: string;
  /** What each step did (or, on a dry run, would do), in order. */
  readonly steps: StepResult<RestoreStep>[];
}

/** Restore steps, in the order they run. */
export const RESTORE_STEPS = ['check', 'data', 'catalog'] as const;
export type RestoreStep = (typeof RESTORE_STEPS)[number];

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

interface TenantState {
  readonly status: string;
  readonly tier: string;
  readonly cellId: string;
  readonly schemaVersion: number;
  /** Whether the tenant's schema and role exist on its cell. */
  readonly schema: boolean;
  readonly role: boolean;
}

async function readTenant(
  db: pg.Pool | pg.PoolClient,
  cells: CellDirectory,
  id: string,
): Promise<TenantState> {
  const { rows } = await db.query<{ status: string; tier: string; cell_id: string; schema_version: number }>(
    'SELECT status::text AS status, tier, cell_id, schema_version FROM control.tenants WHERE id = $1',
    [id],
  );
  const row = rows[0];
  if (!row) throw new TenantNotFoundError(id);
  const found = await cells.cell(row.cell_id).pool.query<{ schema: boolean; role: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role`,
    [id],
  );
  return {
    status: row.status,
    tier: row.tier,
    cellId: row.cell_id,
    schemaVersion: row.schema_version,
    ...found.rows[0]!,
  };
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
function restoreScript(
  id: string,
  tierName: string,
  rowCounts: Record<string, number>,
  cell: Cell,
  version: number,
) {
  const role = pg.escapeIdentifier(id);
  const literal = pg.escapeLiteral(id);
  const settings = Object.entries(roleSettings(getTier(tierName))).map(
    ([name, value]) => `ALTER ROLE ${role} SET ${name} = ${value};`,
  );
  const before = [
    '\\set ON_ERROR_STOP on',
    `CREATE ROLE ${role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT 0 IN ROLE ${pg.escapeIdentifier(cellGroupRole(cell.connection.database))};`,
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
INSERT INTO ${CELL_SCHEMA}.tenant_schemas (tenant_id, version) VALUES (${literal}, ${Number(version)})
  ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, updated_at = now();
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
async function runRestore(cell: Cell, file: string, script: { before: string; after: string }) {
  const child = spawn('psql', ['-X', '-q', '--single-transaction', '-v', 'ON_ERROR_STOP=1'], {
    env: libpqEnvironment(poolConnection(cell.pool)),
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

const sameCounts = (a: Record<string, number>, b: Record<string, number>) =>
  Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((t) => a[t] === b[t]);

interface Ctx {
  readonly deps: RestoreDeps;
  /** The catalog: the locked session on a real run, the pool on a dry run. */
  readonly db: pg.Pool | pg.PoolClient;
  readonly id: string;
  readonly from: string;
  readonly options: z.output<typeof optionsSchema>;
  readonly recorded: ArchiveRow;
  readonly tenant: TenantState;
  readonly cell: Cell;
}

/** The archive on disk is the one the catalog recorded: size, sha256, a CREATE TABLE and the rows per table. */
const checkStep: Step<Ctx, RestoreStep> = {
  name: 'check',
  async plan(ctx) {
    await checkArchive(ctx.id, ctx.from, ctx.recorded);
    const tables = Object.entries(ctx.recorded.row_counts).map(([t, n]) => `${t} ${n}`);
    return [`checked ${ctx.from}: sha256 ${ctx.recorded.sha256}, ${tables.join(', ') || 'no tables'}`];
  },
  async apply(_ctx, planned) {
    return planned;
  },
};

/** Role, schema and rows in one psql transaction on the cell; a schema already back with the same rows is kept. */
const dataStep: Step<Ctx, RestoreStep> = {
  name: 'data',
  async plan(ctx) {
    if (ctx.tenant.schema) {
      if (!sameCounts(await countRows(ctx.cell.pool, ctx.id), ctx.recorded.row_counts)) {
        throw new RestoreError(
          `schema '${ctx.id}' exists in cell ${ctx.cell.id} but its rows differ from ${ctx.from}; inspect it before restoring; nothing changed`,
        );
      }
      return [];
    }
    return [
      `role ${ctx.id} NOLOGIN, CONNECTION LIMIT 0, ${ctx.tenant.tier} settings; schema and rows from the archive into cell ${ctx.cell.id}, one transaction`,
      'row counts checked against the archive before commit',
    ];
  },
  async apply(ctx, planned) {
    await runRestore(
      ctx.cell,
      ctx.from,
      restoreScript(ctx.id, ctx.tenant.tier, ctx.recorded.row_counts, ctx.cell, ctx.tenant.schemaVersion),
    );
    return planned;
  },
};

/** The new role's oid, what resume gives back, and the status change to suspended, in one catalog transaction. */
const catalogStep: Step<Ctx, RestoreStep> = {
  name: 'catalog',
  async plan() {
    return ['status suspended; revoked API keys stay revoked; `cost-guard resume` lets it back in'];
  },
  async apply(ctx, planned) {
    const client = ctx.db as pg.PoolClient;
    const { rows } = await ctx.cell.pool.query<{ oid: string }>(
      'SELECT oid::int8 AS oid FROM pg_roles WHERE rolname = $1',
      [ctx.id],
    );
    const saved: SavedSettings = {
      previousStatus: 'archived',
      role: { connectionLimit: getTier(ctx.tenant.tier).database.connectionLimit, canLogin: true },
      suspendedAt: new Date().toISOString(),
    };
    await inClientTransaction(client, async () => {
      await client.query(
        `INSERT INTO control.tenant_roles (tenant_id, role_oid) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET role_oid = EXCLUDED.role_oid, created_at = now()`,
        [ctx.id, rows[0]!.oid],
      );
      // What resume gives back: LOGIN and the tier's connection limit.
      await client.query(
        `INSERT INTO control.quota_state (tenant_id, period, saved_settings)
         VALUES ($1, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), $2)
         ON CONFLICT (tenant_id) DO UPDATE SET saved_settings = EXCLUDED.saved_settings, updated_at = now()`,
        [ctx.id, JSON.stringify(saved)],
      );
      await transition(client, {
        tenantId: ctx.id,
        from: 'archived',
        to: 'suspended',
        action: 'tenant.restored',
        actor: ctx.options.actor,
        reason: ctx.options.reason,
        evidence: {
          archive: ctx.recorded.path,
          sha256: ctx.recorded.sha256,
          rowCounts: ctx.recorded.row_counts,
          cell: ctx.cell.id,
        },
      });
    });
    return planned;
  },
};

const STEPS = [checkStep, dataStep, catalogStep];

/**
 * Brings an archived tenant back into its cell from the verified archive offboarding wrote: role, schema and
 * rows, with the row counts checked. It comes back `suspended` (role NOLOGIN, connection limit 0) until an
 * operator resumes it, and its revoked API keys stay revoked. Serialized per tenant; a rerun after a crash
 * between the data and the catalog finishes the catalog part. A dry run runs the same steps' plans only.
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
  const restore = async (db: pg.Pool | pg.PoolClient): Promise<RestoreResult> => {
    const tenant = await readTenant(db, deps.cells, id);
    if (tenant.status !== 'archived') refuseState(id, tenant.status);
    const recorded = await recordedArchive(db, id, parsed.from);
    if (tenant.role && !tenant.schema) {
      throw new RestoreError(
        `a role named '${id}' already exists without its schema; drop or rename it first; nothing changed`,
      );
    }
    const ctx: Ctx = {
      deps,
      db,
      id,
      from: parsed.from,
      options: parsed,
      recorded,
      tenant,
      cell: deps.cells.cell(tenant.cellId),
    };
    const steps = await runSteps(STEPS, ctx, {
      dryRun: parsed.dryRun,
      ...(deps.observer ? { observer: deps.observer } : {}),
    });
    return {
      tenantId: id,
      dryRun: parsed.dryRun,
      archive: parsed.from,
      rowCounts: recorded.row_counts,
      status: parsed.dryRun ? tenant.status : 'suspended',
      cellId: tenant.cellId,
      steps,
    };
  };
  return parsed.dryRun ? restore(deps.pool) : withTenantLock(deps.pool, id, (client) => restore(client));
}

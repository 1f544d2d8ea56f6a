import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { DeleteBudgetCommand } from '@aws-sdk/client-budgets';
import { DeleteSecretCommand, DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { z } from 'zod';
import { billingCloseStep } from '../billing/customers.ts';
import type { EnvironmentConfig } from '../config/environments.ts';
import { revokeApiKey } from './api-keys.ts';
import { checkAuditText } from './audit.ts';
import type { Cell } from './cells.ts';
import { TenantNotFoundError } from './errors.ts';
import { manifestsPath } from './lifecycle/manifests.ts';
import {
  inClientTransaction,
  inTransaction,
  libpqEnvironment,
  poolConnection,
  withTenantLock,
} from './lifecycle/session.ts';
import { statusesLeadingTo, type TenantStatus } from './lifecycle/status.ts';
import { type RunSoFar, runSteps, type Step, type StepResult } from './lifecycle/steps.ts';
import { transition } from './lifecycle/transition.ts';
import type { ProvisionerDeps } from './provisioner.ts';
import {
  type AwsClients,
  callAws,
  createAwsClients,
  describeTenantBudget,
  errorName,
  tenantBudgetName,
  tenantSecretName,
} from './tenant-aws.ts';
import { parseTenantId } from './tenant-id.ts';

export const DEFAULT_ARCHIVE_DIR = path.join('out', 'archives');

/** Offboarding refused or stopped before anything was dropped; one line naming the tenant. */
export class OffboardingError extends Error {
  override readonly name = 'OffboardingError';
}

const optionsSchema = z.object({
  actor: z.string().min(1, 'actor must not be empty'),
  reason: z.string().trim().min(1, 'a reason is required'),
  dryRun: z.boolean().optional(),
  archiveDir: z.string().min(1).optional(),
});

export interface OffboardingOptions {
  /** Who acts: an operator (`cli:<user>`) or `control-plane:<sub>`. */
  readonly actor: string;
  /** Why, kept in the audit trail. */
  readonly reason: string;
  /** Print the plan (tables, row counts, what is dropped) and change nothing. @default false */
  readonly dryRun?: boolean;
  /** Where `<id>-<UTC timestamp>.sql.gz` is written. @default 'out/archives' */
  readonly archiveDir?: string;
}

/** Offboarding steps, in the order they run. */
export const OFFBOARDING_STEPS = [
  'block',
  'archive',
  'verify',
  'drop',
  'manifests',
  'aws',
  'billing',
  'archived',
] as const;
export type OffboardingStep = (typeof OFFBOARDING_STEPS)[number];

export interface ArchiveRecord {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Rows per table at the moment of the dump. */
  readonly rowCounts: Record<string, number>;
}

export interface OffboardingResult {
  readonly tenantId: string;
  readonly dryRun: boolean;
  readonly fromStatus: TenantStatus;
  readonly status: TenantStatus;
  /** The verified archive; null when the schema never existed or on a dry run. */
  readonly archive: ArchiveRecord | null;
  /** What each step did (or, on a dry run, would do), in order. */
  readonly steps: StepResult<OffboardingStep>[];
}

interface Ctx {
  readonly deps: ProvisionerDeps;
  /** The catalog: the locked session on a real run, the pool on a dry run. */
  readonly db: pg.Pool | pg.PoolClient;
  /** The tenant's cell, where its role and schema are. */
  readonly cell: Cell;
  readonly id: string;
  readonly from: TenantStatus;
  readonly options: OffboardingOptions & { archiveDir: string };
  readonly aws: AwsClients | null;
  /** The archive written by this run and not yet verified. */
  written?: ArchiveRecord & { partial: string };
  /** The verified archive the drop relies on. */
  archive: ArchiveRecord | null;
}

const OFFBOARDABLE = statusesLeadingTo('offboarding');

async function readStatus(
  db: pg.Pool | pg.PoolClient,
  id: string,
): Promise<{ status: TenantStatus; cellId: string }> {
  const { rows } = await db.query<{ status: TenantStatus; cell_id: string }>(
    'SELECT status::text AS status, cell_id FROM control.tenants WHERE id = $1',
    [id],
  );
  if (!rows[0]) throw new TenantNotFoundError(id);
  return { status: rows[0].status, cellId: rows[0].cell_id };
}

async function schemaExists(db: pg.Pool | pg.PoolClient, id: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [id]);
  return rowCount === 1;
}

async function readRole(db: pg.Pool | pg.PoolClient, id: string): Promise<{ canLogin: boolean } | null> {
  const { rows } = await db.query<{ rolcanlogin: boolean }>(
    'SELECT rolcanlogin FROM pg_roles WHERE rolname = $1',
    [id],
  );
  return rows[0] ? { canLogin: rows[0].rolcanlogin } : null;
}

async function activeKeys(db: pg.Pool | pg.PoolClient, id: string): Promise<string[]> {
  const { rows } = await db.query<{ prefix: string }>(
    'SELECT prefix FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY prefix',
    [id],
  );
  return rows.map((r) => r.prefix);
}

// Only offboarding (the operator CLI) deletes AWS resources, so the workloads' roles never get these calls.
/** Days Secrets Manager keeps a deleted tenant secret recoverable. */
export const SECRET_RECOVERY_WINDOW_DAYS = 30;

/**
 * Schedules deletion of the tenant's database secret, which tenants onboarded before database IAM
 * authentication still have. Returns false when there is none, or its deletion is already scheduled.
 */
export async function scheduleTenantSecretDeletion(
  clients: AwsClients,
  env: EnvironmentConfig,
  tenantId: string,
  options: { readonly dryRun?: boolean } = {},
): Promise<boolean> {
  const name = tenantSecretName(env, tenantId);
  return callAws(clients, `scheduling deletion of secret ${name}`, async () => {
    try {
      const described = await clients.secrets.send(new DescribeSecretCommand({ SecretId: name }));
      if (described.DeletedDate) return false;
      if (!options.dryRun) {
        await clients.secrets.send(
          new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: SECRET_RECOVERY_WINDOW_DAYS }),
        );
      }
      return true;
    } catch (error) {
      if (errorName(error) === 'ResourceNotFoundException') return false;
      throw error;
    }
  });
}

/** Deletes the tenant's budget; false when it did not exist. */
export async function deleteTenantBudget(
  clients: AwsClients,
  env: EnvironmentConfig,
  tenantId: string,
): Promise<boolean> {
  const name = tenantBudgetName(env, tenantId);
  return callAws(clients, `deleting budget ${name}`, async () => {
    try {
      await clients.budgets.send(new DeleteBudgetCommand({ AccountId: env.account, BudgetName: name }));
      return true;
    } catch (error) {
      if (errorName(error) === 'NotFoundException') return false;
      throw error;
    }
  });
}

function client(ctx: Ctx): pg.PoolClient {
  return ctx.db as pg.PoolClient;
}

export async function countRows(db: pg.Pool | pg.PoolClient, id: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ tablename: string }>(
    'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
    [id],
  );
  const counts: Record<string, number> = {};
  for (const { tablename } of rows) {
    const q = `${pg.escapeIdentifier(id)}.${pg.escapeIdentifier(tablename)}`;
    const result = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${q}`);
    counts[tablename] = result.rows[0]!.n;
  }
  return counts;
}

/** Checks that a gzip archive holds each table's CREATE TABLE and a COPY block with the expected rows. */
export async function verifyArchive(file: string, id: string, rowCounts: Record<string, number>) {
  const ident = (s: string) => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : pg.escapeIdentifier(s));
  const found = new Map<string, { created: boolean; rows: number | null }>();
  const names = new Map<string, string>();
  for (const table of Object.keys(rowCounts)) {
    names.set(`${ident(id)}.${ident(table)}`, table);
    found.set(table, { created: false, rows: null });
  }
  let copying: string | undefined;
  let rows = 0;
  const lines = createInterface({ input: createReadStream(file).pipe(createGunzip()), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (copying !== undefined) {
        if (line === '\\.') {
          found.get(copying)!.rows = rows;
          copying = undefined;
        } else rows++;
        continue;
      }
      const create = /^CREATE TABLE (\S+) \($/.exec(line);
      const table = create ? names.get(create[1]!) : undefined;
      if (table) found.get(table)!.created = true;
      const copy = /^COPY (\S+) \(.*\) FROM stdin;$/.exec(line);
      const copied = copy ? names.get(copy[1]!) : undefined;
      if (copied) {
        copying = copied;
        rows = 0;
      }
    }
  } catch (error) {
    throw new OffboardingError(
      `archive ${file} of tenant '${id}' is not readable: ${error instanceof Error ? error.message : error}`,
    );
  }
  for (const [table, seen] of found) {
    if (!seen.created || seen.rows !== rowCounts[table]) {
      throw new OffboardingError(
        `archive ${file} of tenant '${id}' failed verification: table '${table}' has ${seen.created ? `${seen.rows ?? 'no'} COPY rows` : 'no CREATE TABLE'}, expected ${rowCounts[table]} rows`,
      );
    }
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** pg_dump of the tenant schema inside `snapshot`, gzipped to `file`; returns the size and sha256. */
async function dumpSchema(pool: pg.Pool, id: string, snapshot: string, file: string) {
  // pg_dump takes --schema as a pattern: quoting makes the hyphenated id literal.
  const child = spawn(
    'pg_dump',
    [`--schema=${pg.escapeIdentifier(id)}`, '--no-owner', `--snapshot=${snapshot}`],
    { env: libpqEnvironment(poolConnection(pool)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await Promise.all([pipeline(child.stdout, createGzip(), tap, createWriteStream(file)), exited]);
  } catch (error) {
    throw new OffboardingError(
      `archiving tenant '${id}' to ${file} failed: ${error instanceof Error ? error.message : error}`,
    );
  }
  const code = await exited;
  if (code !== 0) {
    throw new OffboardingError(`pg_dump of tenant '${id}' exited ${code}: ${stderr.trim().split('\n')[0]}`);
  }
  return { bytes, sha256: hash.digest('hex') };
}

interface ArchiveRow {
  path: string;
  bytes: string;
  sha256: string;
  row_counts: Record<string, number>;
}

async function latestArchive(db: pg.Pool | pg.PoolClient, id: string): Promise<ArchiveRecord | null> {
  const { rows } = await db.query<ArchiveRow>(
    `SELECT path, bytes, sha256, row_counts FROM control.tenant_archives
      WHERE tenant_id = $1 ORDER BY verified_at DESC LIMIT 1`,
    [id],
  );
  const r = rows[0];
  return r ? { path: r.path, bytes: Number(r.bytes), sha256: r.sha256, rowCounts: r.row_counts } : null;
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** Status offboarding, logins blocked, sessions ended, API keys revoked; one transaction. */
const blockStep: Step<Ctx, OffboardingStep> = {
  name: 'block',
  async plan(ctx) {
    const role = await readRole(ctx.cell.pool, ctx.id);
    const keys = await activeKeys(ctx.db, ctx.id);
    if (ctx.from === 'offboarding' && !role?.canLogin && keys.length === 0) return [];
    return [
      `status offboarding; role ${role ? 'NOLOGIN' : 'absent'}, sessions ended, ${keys.length} API key(s) revoked`,
    ];
  },
  async apply(ctx) {
    const c = client(ctx);
    const cell = ctx.cell.pool;
    return inClientTransaction(c, async () => {
      const role = await readRole(cell, ctx.id);
      if (role) await cell.query(`ALTER ROLE ${pg.escapeIdentifier(ctx.id)} NOLOGIN`);
      const ended = await cell.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
        [ctx.id],
      );
      const revoked = await activeKeys(c, ctx.id);
      for (const prefix of revoked) await revokeApiKey(c, ctx.id, prefix);
      if (ctx.from !== 'offboarding') {
        await transition(c, {
          tenantId: ctx.id,
          from: ctx.from,
          to: 'offboarding',
          actor: ctx.options.actor,
          reason: ctx.options.reason,
          evidence: {
            login: role ? 'NOLOGIN' : 'no role',
            sessionsEnded: ended.rowCount ?? 0,
            revokedApiKeys: revoked,
          },
        });
      }
      return [
        `status offboarding; role ${role ? 'NOLOGIN' : 'absent'}, ${ended.rowCount ?? 0} session(s) ended, ${revoked.length} API key(s) revoked`,
      ];
    });
  },
};

/** The recorded archive still holds what the schema holds now: same file hash, same row counts. */
async function stillValid(ctx: Ctx, archive: ArchiveRecord): Promise<boolean> {
  const size = await stat(archive.path).catch(() => null);
  if (size?.size !== archive.bytes || (await sha256File(archive.path)) !== archive.sha256) return false;
  const counts = await countRows(ctx.cell.pool, ctx.id);
  const tables = Object.keys(counts);
  const same =
    tables.length === Object.keys(archive.rowCounts).length &&
    tables.every((t) => archive.rowCounts[t] === counts[t]);
  if (!same) return false;
  await verifyArchive(archive.path, ctx.id, archive.rowCounts);
  return true;
}

/**
 * A schema already gone was dropped by an earlier run after its archive verified: never re-archive it.
 * A verified archive that still matches the schema is reused.
 */
async function needsArchive(ctx: Ctx): Promise<boolean> {
  if (!(await schemaExists(ctx.cell.pool, ctx.id))) {
    ctx.archive = await latestArchive(ctx.db, ctx.id);
    return false;
  }
  const previous = await latestArchive(ctx.db, ctx.id);
  if (previous && (await stillValid(ctx, previous))) {
    ctx.archive = previous;
    return false;
  }
  return true;
}

/** pg_dump of the schema and its row counts from one snapshot, written to `<file>.partial`. */
const archiveStep: Step<Ctx, OffboardingStep> = {
  name: 'archive',
  async plan(ctx) {
    if (!(await needsArchive(ctx))) return [];
    const counts = await countRows(ctx.cell.pool, ctx.id);
    const tables = Object.entries(counts).map(([t, n]) => `${t} ${n}`);
    const file = path.join(ctx.options.archiveDir, `${ctx.id}-<UTC timestamp>.sql.gz`);
    return [`archive schema ${ctx.id} to ${file}: ${tables.join(', ') || 'no tables'}`];
  },
  async apply(ctx) {
    await mkdir(ctx.options.archiveDir, { recursive: true });
    const file = path.join(ctx.options.archiveDir, `${ctx.id}-${stamp()}.sql.gz`);
    const partial = `${file}.partial`;
    try {
      // One snapshot for the counts and the dump, so the two describe the same rows.
      const written = await inTransaction(ctx.cell.pool, async (c) => {
        await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        const snap = await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
        const rowCounts = await countRows(c, ctx.id);
        return { rowCounts, ...(await dumpSchema(ctx.cell.pool, ctx.id, snap.rows[0]!.s, partial)) };
      });
      ctx.written = { path: file, partial, ...written };
      return [`wrote ${partial} (${written.bytes} bytes, sha256 ${written.sha256})`];
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  },
};

/** The written archive is checked (hash, CREATE TABLE and COPY rows per table), then recorded. */
const verifyStep: Step<Ctx, OffboardingStep> = {
  name: 'verify',
  async plan(_ctx, so) {
    const archive = so.results.find((r) => r.step === 'archive');
    return archive?.action === 'unchanged'
      ? []
      : ['verify the archive: sha256, CREATE TABLE and COPY rows per table'];
  },
  async apply(ctx) {
    const written = ctx.written;
    if (!written) throw new OffboardingError(`tenant '${ctx.id}': no archive was written to verify`);
    try {
      if ((await sha256File(written.partial)) !== written.sha256) {
        throw new OffboardingError(
          `archive ${written.partial} of tenant '${ctx.id}' changed after it was written`,
        );
      }
      await verifyArchive(written.partial, ctx.id, written.rowCounts);
      await rename(written.partial, written.path);
    } catch (error) {
      await rm(written.partial, { force: true });
      throw error;
    }
    const { path: file, bytes, sha256, rowCounts } = written;
    await ctx.db.query(
      `INSERT INTO control.tenant_archives (tenant_id, path, bytes, sha256, row_counts) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, path) DO UPDATE SET bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256,
         row_counts = EXCLUDED.row_counts, verified_at = now()`,
      [ctx.id, file, bytes, sha256, JSON.stringify(rowCounts)],
    );
    ctx.archive = { path: file, bytes, sha256, rowCounts };
    return [`verified and recorded ${file}`];
  },
};

/** Schema and role dropped in one transaction, and only with a verified archive of the schema. */
const dropStep: Step<Ctx, OffboardingStep> = {
  name: 'drop',
  async plan(ctx) {
    const changes: string[] = [];
    if (await schemaExists(ctx.cell.pool, ctx.id))
      changes.push(`drop schema ${ctx.id} CASCADE after the archive verifies`);
    if (await readRole(ctx.cell.pool, ctx.id)) changes.push(`drop role ${ctx.id}`);
    return changes;
  },
  async apply(ctx) {
    const s = pg.escapeIdentifier(ctx.id);
    return inTransaction(ctx.cell.pool, async (c) => {
      const changes: string[] = [];
      if (await schemaExists(c, ctx.id)) {
        if (!ctx.archive)
          throw new OffboardingError(`tenant '${ctx.id}' has no verified archive; nothing dropped`);
        await c.query(`DROP SCHEMA ${s} CASCADE`);
        await c.query('DELETE FROM cell.tenant_schemas WHERE tenant_id = $1', [ctx.id]);
        changes.push(`dropped schema ${ctx.id} (CASCADE)`);
      }
      if (await readRole(c, ctx.id)) {
        await c.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
          [ctx.id],
        );
        await c.query(`REASSIGN OWNED BY ${s} TO CURRENT_USER`);
        await c.query(`DROP OWNED BY ${s}`);
        await c.query(`DROP ROLE ${s}`);
        changes.push(`dropped role ${ctx.id}`);
      }
      return changes;
    });
  },
};

const manifestsStep: Step<Ctx, OffboardingStep> = {
  name: 'manifests',
  async plan(ctx) {
    const file = manifestsPath(ctx.deps.manifestsDir, ctx.id);
    const changes: string[] = [];
    if (await stat(file).catch(() => null)) changes.push(`delete ${file}`);
    if (ctx.deps.kube) changes.push(`delete namespace ${ctx.id} (${ctx.deps.kube.where})`);
    return changes;
  },
  async apply(ctx, planned) {
    try {
      await unlink(manifestsPath(ctx.deps.manifestsDir, ctx.id));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    await ctx.deps.kube?.deleteNamespace(ctx.id);
    return planned;
  },
};

/** The budget, and the database secret that only tenants onboarded before IAM authentication have. */
const awsStep: Step<Ctx, OffboardingStep> = {
  name: 'aws',
  async plan(ctx) {
    if (!ctx.aws) return null;
    const { env } = ctx.deps;
    const changes: string[] = [];
    if ((await describeTenantBudget(ctx.aws, env, ctx.id)).exists)
      changes.push(`delete budget ${tenantBudgetName(env, ctx.id)}`);
    if (await scheduleTenantSecretDeletion(ctx.aws, env, ctx.id, { dryRun: true }))
      changes.push(
        `schedule deletion of secret ${tenantSecretName(env, ctx.id)} (${SECRET_RECOVERY_WINDOW_DAYS}-day recovery window)`,
      );
    return changes;
  },
  async apply(ctx) {
    const aws = ctx.aws!;
    const { env } = ctx.deps;
    const changes: string[] = [];
    if (await deleteTenantBudget(aws, env, ctx.id))
      changes.push(`deleted budget ${tenantBudgetName(env, ctx.id)}`);
    if (await scheduleTenantSecretDeletion(aws, env, ctx.id)) {
      changes.push(
        `secret ${tenantSecretName(env, ctx.id)} scheduled for deletion (${SECRET_RECOVERY_WINDOW_DAYS}-day recovery window)`,
      );
    }
    return changes;
  },
};

const archivedStep: Step<Ctx, OffboardingStep> = {
  name: 'archived',
  async plan() {
    return ['status archived; catalog row, usage and audit trail kept'];
  },
  async apply(ctx, planned, so: RunSoFar<OffboardingStep>) {
    const c = client(ctx);
    await inClientTransaction(c, () =>
      transition(c, {
        tenantId: ctx.id,
        from: 'offboarding',
        to: 'archived',
        actor: ctx.options.actor,
        reason: ctx.options.reason,
        evidence: { archive: ctx.archive, steps: so.results.flatMap((r) => r.changes) },
      }),
    );
    return planned;
  },
};

const STEPS = [
  blockStep,
  archiveStep,
  verifyStep,
  dropStep,
  manifestsStep,
  awsStep,
  billingCloseStep,
  archivedStep,
];

function refuse(id: string, status: TenantStatus): never {
  if (status === 'provisioning') {
    throw new OffboardingError(
      `tenant '${id}' is provisioning: rerun create until it is active, then offboard it`,
    );
  }
  throw new OffboardingError(`tenant '${id}' is ${status}; offboarding does not change it`);
}

/**
 * Offboards a tenant: blocks it, archives its schema (pg_dump, gzip, sha256, verified), and only then drops
 * the schema, role, manifests and AWS resources. Serialized per tenant and resumable: a rerun after a crash
 * reuses a verified archive and never drops without one. A dry run runs the same steps' plans only.
 */
export async function offboardTenant(
  deps: ProvisionerDeps,
  tenantId: string,
  options: OffboardingOptions,
): Promise<OffboardingResult> {
  const parsed = optionsSchema.parse(options);
  const id = parseTenantId(tenantId);
  // Before any step: a value the audit trail cannot store must not stop the run after logins are blocked.
  checkAuditText('actor', parsed.actor);
  checkAuditText('reason', parsed.reason);
  const archiveDir = parsed.archiveDir ?? DEFAULT_ARCHIVE_DIR;
  const dryRun = parsed.dryRun ?? false;
  const aws = deps.aws?.enabled ? createAwsClients(deps.env) : null;
  const offboard = async (db: pg.Pool | pg.PoolClient): Promise<OffboardingResult> => {
    const { status: from, cellId } = await readStatus(db, id);
    if (from === 'archived')
      return { tenantId: id, dryRun, fromStatus: from, status: from, archive: null, steps: [] };
    if (from !== 'offboarding' && !OFFBOARDABLE.includes(from)) refuse(id, from);
    const cell = deps.cells.cell(cellId);
    const ctx: Ctx = { deps, db, cell, id, from, options: { ...parsed, archiveDir }, aws, archive: null };
    const steps = await runSteps(STEPS, ctx, {
      dryRun,
      ...(deps.observer ? { observer: deps.observer } : {}),
    });
    return {
      tenantId: id,
      dryRun,
      fromStatus: from,
      status: dryRun ? from : 'archived',
      archive: dryRun ? null : ctx.archive,
      steps,
    };
  };
  return dryRun ? offboard(deps.pool) : withTenantLock(deps.pool, id, (c) => offboard(c));
}

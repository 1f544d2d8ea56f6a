import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, createGzip } from 'node:zlib';
import { DeleteBudgetCommand } from '@aws-sdk/client-budgets';
import { DeleteSecretCommand, DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { z } from 'zod';
import { revokeApiKey } from './api-keys.ts';
import { checkAuditText, recordAudit } from './audit.ts';
import { TenantNotFoundError } from './errors.ts';
import { DEFAULT_MANIFESTS_DIR, InjectedFault, type ProvisionerDeps } from './provisioner.ts';
import { LIFECYCLE_CHANNEL } from './suspension.ts';
import {
  type AwsClients,
  AwsServiceError,
  AwsUnavailableError,
  createAwsClients,
  tenantBudgetName,
  tenantSecretName,
} from './tenant-aws.ts';
import { parseTenantId } from './tenant-id.ts';
import { TENANT_LOCK_CLASS } from './transaction.ts';

const run = promisify(execFile);

export const DEFAULT_ARCHIVE_DIR = path.join('out', 'archives');
/** Days Secrets Manager keeps the tenant's secret recoverable after offboarding. */
export const SECRET_RECOVERY_WINDOW_DAYS = 30;

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
  /** Test hook: simulates a crash right after this step. @default - none */
  readonly faultAfter?: 'offboarding' | 'archive' | 'drop';
  /** Test hook: runs on the written archive before it is verified. @default - none */
  readonly beforeVerify?: (file: string) => Promise<void>;
}

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
  readonly fromStatus: string;
  readonly status: string;
  /** The verified archive; null when the schema never existed or on a dry run. */
  readonly archive: ArchiveRecord | null;
  /** What was (or, on a dry run, would be) done, in order. */
  readonly steps: string[];
}

interface Ctx {
  readonly deps: ProvisionerDeps;
  readonly client: pg.PoolClient;
  readonly id: string;
  readonly options: OffboardingOptions & { archiveDir: string };
  readonly steps: string[];
}

const OFFBOARDABLE = ['active', 'limited', 'suspended', 'offboarding'];

async function readStatus(db: pg.Pool | pg.PoolClient, id: string): Promise<string> {
  const { rows } = await db.query<{ status: string }>(
    'SELECT status::text AS status FROM control.tenants WHERE id = $1',
    [id],
  );
  if (!rows[0]) throw new TenantNotFoundError(id);
  return rows[0].status;
}

async function schemaExists(db: pg.Pool | pg.PoolClient, id: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [id]);
  return rowCount === 1;
}

async function roleExists(db: pg.Pool | pg.PoolClient, id: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [id]);
  return rowCount === 1;
}

async function countRows(db: pg.Pool | pg.PoolClient, id: string): Promise<Record<string, number>> {
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

async function inTx<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

async function setStatus(ctx: Ctx, from: string, to: string, evidence: Record<string, unknown>) {
  await ctx.client.query(
    `UPDATE control.tenants SET status = $2::control.tenant_status, updated_at = now(), status_changed_at = now()
      WHERE id = $1`,
    [ctx.id, to],
  );
  // Task runners listen here and stop the tenant's running tasks, as on a suspension.
  await ctx.client.query('SELECT pg_notify($1, $2)', [
    LIFECYCLE_CHANNEL,
    JSON.stringify({ tenantId: ctx.id, status: to, action: `tenant.${to}` }),
  ]);
  await recordAudit(ctx.client, {
    tenantId: ctx.id,
    actor: ctx.options.actor,
    action: `tenant.${to}`,
    fromStatus: from,
    toStatus: to,
    reason: ctx.options.reason,
    evidence,
  });
}

/** Step 1: status offboarding, logins blocked, sessions ended, API keys revoked; one transaction. */
async function beginOffboarding(ctx: Ctx, from: string): Promise<void> {
  await inTx(ctx.client, async () => {
    const role = await roleExists(ctx.client, ctx.id);
    if (role) await ctx.client.query(`ALTER ROLE ${pg.escapeIdentifier(ctx.id)} NOLOGIN`);
    const ended = await ctx.client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
      [ctx.id],
    );
    const keys = await ctx.client.query<{ prefix: string }>(
      'SELECT prefix FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY prefix',
      [ctx.id],
    );
    const revoked = keys.rows.map((r) => r.prefix);
    for (const prefix of revoked) await revokeApiKey(ctx.client, ctx.id, prefix);
    if (from !== 'offboarding') {
      await setStatus(ctx, from, 'offboarding', {
        login: role ? 'NOLOGIN' : 'no role',
        sessionsEnded: ended.rowCount ?? 0,
        revokedApiKeys: revoked,
      });
    }
    ctx.steps.push(
      `status offboarding; role ${role ? 'NOLOGIN' : 'absent'}, ${ended.rowCount ?? 0} session(s) ended, ${revoked.length} API key(s) revoked`,
    );
  });
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

/** pg_dump's libpq connection, taken from the pool's own settings. */
function dumpConnection(pool: pg.Pool): { args: string[]; env: NodeJS.ProcessEnv } {
  const o = (pool as unknown as { options: pg.PoolConfig }).options;
  if (o.connectionString) return { args: [`--dbname=${o.connectionString}`], env: process.env };
  const env = { ...process.env };
  if (o.host) env.PGHOST = o.host;
  if (o.port) env.PGPORT = String(o.port);
  if (o.user) env.PGUSER = o.user;
  if (o.database) env.PGDATABASE = o.database;
  if (typeof o.password === 'string') env.PGPASSWORD = o.password;
  return { args: [], env };
}

/** pg_dump of the tenant schema inside `snapshot`, gzipped to `file`; returns the size and sha256. */
async function dumpSchema(pool: pg.Pool, id: string, snapshot: string, file: string) {
  const conn = dumpConnection(pool);
  // pg_dump takes --schema as a pattern: quoting makes the hyphenated id literal.
  const child = spawn(
    'pg_dump',
    [...conn.args, `--schema=${pg.escapeIdentifier(id)}`, '--no-owner', `--snapshot=${snapshot}`],
    { env: conn.env, stdio: ['ignore', 'pipe', 'pipe'] },
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

/** The recorded archive still holds what the schema holds now: same file hash, same row counts. */
async function stillValid(ctx: Ctx, archive: ArchiveRecord): Promise<boolean> {
  const size = await stat(archive.path).catch(() => null);
  if (size?.size !== archive.bytes || (await sha256File(archive.path)) !== archive.sha256) return false;
  const counts = await countRows(ctx.client, ctx.id);
  const tables = Object.keys(counts);
  const same =
    tables.length === Object.keys(archive.rowCounts).length &&
    tables.every((t) => archive.rowCounts[t] === counts[t]);
  if (!same) return false;
  await verifyArchive(archive.path, ctx.id, archive.rowCounts);
  return true;
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** Step 2: a verified archive of the schema, reused when a previous run already wrote one. */
async function archiveSchema(ctx: Ctx): Promise<ArchiveRecord> {
  const previous = await latestArchive(ctx.client, ctx.id);
  if (previous && (await stillValid(ctx, previous))) {
    ctx.steps.push(`reused verified archive ${previous.path} (sha256 ${previous.sha256})`);
    return previous;
  }
  await mkdir(ctx.options.archiveDir, { recursive: true });
  const file = path.join(ctx.options.archiveDir, `${ctx.id}-${stamp()}.sql.gz`);
  const partial = `${file}.partial`;
  try {
    // One snapshot for the counts and the dump, so the two describe the same rows.
    const { rowCounts, bytes, sha256 } = await inTx(ctx.client, async () => {
      await ctx.client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const snap = await ctx.client.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
      const counts = await countRows(ctx.client, ctx.id);
      return { rowCounts: counts, ...(await dumpSchema(ctx.deps.pool, ctx.id, snap.rows[0]!.s, partial)) };
    });
    await ctx.options.beforeVerify?.(partial);
    if ((await sha256File(partial)) !== sha256) {
      throw new OffboardingError(`archive ${partial} of tenant '${ctx.id}' changed after it was written`);
    }
    await verifyArchive(partial, ctx.id, rowCounts);
    await rename(partial, file);
    await ctx.client.query(
      `INSERT INTO control.tenant_archives (tenant_id, path, bytes, sha256, row_counts) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, path) DO UPDATE SET bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256,
         row_counts = EXCLUDED.row_counts, verified_at = now()`,
      [ctx.id, file, bytes, sha256, JSON.stringify(rowCounts)],
    );
    ctx.steps.push(`archived and verified ${file} (${bytes} bytes, sha256 ${sha256})`);
    return { path: file, bytes, sha256, rowCounts };
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/** Step 3: schema and role dropped in one transaction, re-checking the lock holder's view first. */
async function dropDatabaseObjects(ctx: Ctx): Promise<void> {
  const s = pg.escapeIdentifier(ctx.id);
  await inTx(ctx.client, async () => {
    if (await schemaExists(ctx.client, ctx.id)) {
      await ctx.client.query(`DROP SCHEMA ${s} CASCADE`);
      ctx.steps.push(`dropped schema ${ctx.id} (CASCADE)`);
    }
    if (await roleExists(ctx.client, ctx.id)) {
      await ctx.client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
        [ctx.id],
      );
      await ctx.client.query(`REASSIGN OWNED BY ${s} TO CURRENT_USER`);
      await ctx.client.query(`DROP OWNED BY ${s}`);
      await ctx.client.query(`DROP ROLE ${s}`);
      ctx.steps.push(`dropped role ${ctx.id}`);
    }
  });
}

async function removeManifests(ctx: Ctx): Promise<void> {
  const file = path.join(ctx.deps.manifestsDir ?? DEFAULT_MANIFESTS_DIR, `${ctx.id}.yaml`);
  try {
    await unlink(file);
    ctx.steps.push(`deleted ${file}`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (ctx.deps.kubeContext) {
    await run('kubectl', [
      '--context',
      ctx.deps.kubeContext,
      'delete',
      'namespace',
      ctx.id,
      '--ignore-not-found',
      '--wait=false',
    ]);
    ctx.steps.push(`deleted namespace ${ctx.id} in ${ctx.deps.kubeContext}`);
  }
}

async function awsCall<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (status === undefined) throw new AwsUnavailableError(`AWS unreachable during ${what}: ${message}`);
    throw new AwsServiceError(`AWS ${what} failed with HTTP ${status}: ${message}`);
  }
}

const notFound = (error: unknown) =>
  ['NotFoundException', 'ResourceNotFoundException'].includes((error as Error).name);

async function removeAws(ctx: Ctx, aws: AwsClients): Promise<void> {
  const { env } = ctx.deps;
  const budget = tenantBudgetName(env, ctx.id);
  const deleted = await awsCall(`deleting budget ${budget}`, async () => {
    try {
      await aws.budgets.send(new DeleteBudgetCommand({ AccountId: env.account, BudgetName: budget }));
      return true;
    } catch (error) {
      if (notFound(error)) return false;
      throw error;
    }
  });
  if (deleted) ctx.steps.push(`deleted budget ${budget}`);
  const secret = tenantSecretName(env, ctx.id);
  const scheduled = await awsCall(`scheduling deletion of secret ${secret}`, async () => {
    try {
      const described = await aws.secrets.send(new DescribeSecretCommand({ SecretId: secret }));
      if (described.DeletedDate) return false;
      await aws.secrets.send(
        new DeleteSecretCommand({ SecretId: secret, RecoveryWindowInDays: SECRET_RECOVERY_WINDOW_DAYS }),
      );
      return true;
    } catch (error) {
      if (notFound(error)) return false;
      throw error;
    }
  });
  if (scheduled) {
    ctx.steps.push(
      `secret ${secret} scheduled for deletion (${SECRET_RECOVERY_WINDOW_DAYS}-day recovery window)`,
    );
  }
}

function refuse(id: string, status: string): never {
  if (status === 'provisioning') {
    throw new OffboardingError(
      `tenant '${id}' is provisioning: rerun create until it is active, then offboard it`,
    );
  }
  throw new OffboardingError(`tenant '${id}' is ${status}; offboarding does not change it`);
}

async function plan(deps: ProvisionerDeps, id: string, archiveDir: string): Promise<OffboardingResult> {
  const status = await readStatus(deps.pool, id);
  if (status === 'archived')
    return { tenantId: id, dryRun: true, fromStatus: status, status, archive: null, steps: [] };
  if (!OFFBOARDABLE.includes(status)) refuse(id, status);
  const keys = await deps.pool.query(
    'SELECT 1 FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL',
    [id],
  );
  const steps = [`status offboarding; role NOLOGIN, sessions ended, ${keys.rowCount} API key(s) revoked`];
  if (await schemaExists(deps.pool, id)) {
    const counts = await countRows(deps.pool, id);
    const tables = Object.entries(counts).map(([t, n]) => `${t} ${n}`);
    steps.push(
      `archive schema ${id} to ${path.join(archiveDir, `${id}-<UTC timestamp>.sql.gz`)}: ${tables.join(', ') || 'no tables'}`,
    );
    steps.push(`drop schema ${id} CASCADE after the archive verifies`);
  }
  if (await roleExists(deps.pool, id)) steps.push(`drop role ${id}`);
  steps.push(`delete ${path.join(deps.manifestsDir ?? DEFAULT_MANIFESTS_DIR, `${id}.yaml`)}`);
  if (deps.kubeContext) steps.push(`kubectl delete namespace ${id} in ${deps.kubeContext}`);
  if (deps.aws?.enabled) {
    steps.push(`delete budget ${tenantBudgetName(deps.env, id)}`);
    steps.push(
      `schedule deletion of secret ${tenantSecretName(deps.env, id)} (${SECRET_RECOVERY_WINDOW_DAYS}-day recovery window)`,
    );
  }
  steps.push('status archived; catalog row, usage and audit trail kept');
  return { tenantId: id, dryRun: true, fromStatus: status, status, archive: null, steps };
}

/**
 * Offboards a tenant: blocks it, archives its schema (pg_dump, gzip, sha256, verified), and only then drops
 * the schema, role, manifests and AWS resources. Serialized per tenant and resumable: a rerun after a crash
 * reuses a verified archive and never drops without one.
 */
export async function offboardTenant(
  deps: ProvisionerDeps,
  tenantId: string,
  options: OffboardingOptions,
): Promise<OffboardingResult> {
  const parsed = optionsSchema.parse({
    actor: options.actor,
    reason: options.reason,
    dryRun: options.dryRun,
    archiveDir: options.archiveDir,
  });
  const id = parseTenantId(tenantId);
  // Before any step: a value the audit trail cannot store must not stop the run after logins are blocked.
  checkAuditText('actor', parsed.actor);
  checkAuditText('reason', parsed.reason);
  const archiveDir = parsed.archiveDir ?? DEFAULT_ARCHIVE_DIR;
  if (parsed.dryRun) return plan(deps, id, archiveDir);
  const aws = deps.aws?.enabled ? createAwsClients(deps.env) : null;
  const client = await deps.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [TENANT_LOCK_CLASS, id]);
    try {
      const ctx: Ctx = { deps, client, id, options: { ...options, archiveDir }, steps: [] };
      const from = await readStatus(client, id);
      if (from === 'archived')
        return { tenantId: id, dryRun: false, fromStatus: from, status: from, archive: null, steps: [] };
      if (!OFFBOARDABLE.includes(from)) refuse(id, from);
      await beginOffboarding(ctx, from);
      if (options.faultAfter === 'offboarding') throw new InjectedFault('injected fault after offboarding');
      // A schema already gone was dropped by an earlier run after its archive verified: never re-archive.
      const archive = (await schemaExists(client, id))
        ? await archiveSchema(ctx)
        : await latestArchive(client, id);
      if (options.faultAfter === 'archive') throw new InjectedFault('injected fault after archive');
      await dropDatabaseObjects(ctx);
      if (options.faultAfter === 'drop') throw new InjectedFault('injected fault after drop');
      await removeManifests(ctx);
      if (aws) await removeAws(ctx, aws);
      await inTx(client, () => setStatus(ctx, 'offboarding', 'archived', { archive, steps: ctx.steps }));
      return { tenantId: id, dryRun: false, fromStatus: from, status: 'archived', archive, steps: ctx.steps };
    } finally {
      await client
        .query('SELECT pg_advisory_unlock($1, hashtext($2))', [TENANT_LOCK_CLASS, id])
        .catch((error) => {
          broken = error;
        });
    }
  } finally {
    client.release(broken);
  }
}

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import { type EnvironmentConfig, tenantHostname } from '../config/environments.ts';
import { renderTenantManifests } from '../constructs/tenant-namespace.ts';
import { apiKeyInsertStatement } from './api-keys.ts';
import { auditInsertStatement, checkAuditText, recordAudit } from './audit.ts';
import { DatabaseUnavailableError, TenantNotFoundError } from './errors.ts';
import {
  type AwsClients,
  budgetChanges,
  createAwsClients,
  describeTenantBudget,
  ensureTenantBudget,
  ensureTenantSecret,
  readTenantSecret,
} from './tenant-aws.ts';
import {
  applyTenantDatabase,
  assertRoleIsOurs,
  databaseChanges,
  inspectTenantDatabase,
  sessionSettings,
} from './tenant-database.ts';
import { parseTenantId } from './tenant-id.ts';
import { TENANT_TABLES } from './tenant-schema.ts';
import { getTier, type Tier } from './tiers.ts';
import { TENANT_LOCK_CLASS } from './transaction.ts';

/** Provisioning steps, in the order they run. */
export const STEP_NAMES = [
  'catalog',
  'secret',
  'budget',
  'database',
  'manifests',
  'readiness',
  'activate',
] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** Advisory lock class for per-tenant serialization (the second key is hashtext(id)). */

export const DEFAULT_MANIFESTS_DIR = path.join('out', 'manifests');

export interface ProvisionerDeps {
  /** Catalog database; tenant schemas live in the same database (one cell per database). */
  readonly pool: pg.Pool;
  readonly env: EnvironmentConfig;
  /** @default - AWS steps (secret, budget) are skipped */
  readonly aws?: { readonly enabled: boolean };
  /** Where `<id>.yaml` is written. @default 'out/manifests' */
  readonly manifestsDir?: string;
  /** Applies the manifests with `kubectl apply --server-side` in this context. @default - not applied */
  readonly kubeContext?: string;
  /** @default - silent */
  readonly logger?: pino.Logger;
  /** Test hook: simulates a crash right after this step completes. @default - none */
  readonly faultAfter?: StepName;
}

/** Thrown by the faultAfter test hook. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

/** The tenant exists in a state that create may not change (e.g. suspended, or another tier). */
export class TenantStateError extends Error {
  override readonly name = 'TenantStateError';
}

/** The tenant was provisioned but does not work yet; it stays `provisioning` and a rerun retries. */
export class ReadinessError extends Error {
  override readonly name = 'ReadinessError';
}

/** kubectl failed; the tenant stays `provisioning`. */
export class KubectlError extends Error {
  override readonly name = 'KubectlError';
}

export interface TenantRecord {
  readonly id: string;
  readonly tier: string;
  readonly status: 'provisioning' | 'active' | 'limited' | 'suspended' | 'offboarding' | 'archived';
  readonly cellId: string;
  readonly hostname: string | null;
  readonly schemaVersion: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly statusChangedAt: Date;
}

export interface StepReport {
  readonly step: StepName;
  /** applied: changed something; unchanged: already in sync; skipped: not enabled; planned: dry run. */
  readonly action: 'applied' | 'unchanged' | 'skipped' | 'planned';
  readonly ms: number;
  /** The difference between desired and actual state, in words. */
  readonly changes: string[];
}

export interface CreateTenantResult {
  /** The catalog row after the run; null only for a dry run of a tenant that does not exist. */
  readonly tenant: TenantRecord | null;
  /** Present only when a key was issued by this run: shown once, never stored in clear. */
  readonly apiKey?: { readonly key: string; readonly prefix: string };
  readonly steps: StepReport[];
  /** Milliseconds per step, and `total`. */
  readonly timings: Partial<Record<StepName | 'total', number>>;
  /** True when the tenant logged in as its own role, wrote and read its schema, and its budget exists. */
  readonly ready: boolean;
  readonly changed: boolean;
  readonly dryRun: boolean;
}

const requestSchema = z.object({
  id: z.string(),
  tier: z.string(),
  actor: z.string().min(1, 'actor must not be empty'),
  dryRun: z.boolean().optional(),
  reason: z.string().optional(),
});
export type CreateTenantRequest = z.input<typeof requestSchema>;

interface TenantRow {
  id: string;
  tier: string;
  status: TenantRecord['status'];
  cell_id: string;
  hostname: string | null;
  schema_version: number;
  created_at: Date;
  updated_at: Date;
  status_changed_at: Date;
}

const TENANT_COLUMNS =
  'id, tier, status, cell_id, hostname, schema_version, created_at, updated_at, status_changed_at';

function toRecord(row: TenantRow): TenantRecord {
  return {
    id: row.id,
    tier: row.tier,
    status: row.status,
    cellId: row.cell_id,
    hostname: row.hostname,
    schemaVersion: row.schema_version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    statusChangedAt: row.status_changed_at,
  };
}

async function readTenant(db: pg.Pool | pg.ClientBase, id: string): Promise<TenantRecord | null> {
  const { rows } = await db.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM control.tenants WHERE id = $1`, [
    id,
  ]);
  return rows[0] ? toRecord(rows[0]) : null;
}

function manifestsPath(deps: ProvisionerDeps, id: string): string {
  return path.join(deps.manifestsDir ?? DEFAULT_MANIFESTS_DIR, `${id}.yaml`);
}

function renderFor(deps: ProvisionerDeps, id: string, tier: Tier): string {
  return renderTenantManifests({
    tenantId: id,
    tier,
    hostname: tenantHostname(deps.env, id),
    privateNetworkCidr: deps.env.network.cidr,
  });
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Writes the file, making its directory only when missing (one mkdir per directory, not per tenant). */
async function writeCreatingDir(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}

async function kubectlApply(context: string, file: string): Promise<void> {
  const args = [
    '--context',
    context,
    'apply',
    '--server-side',
    '--field-manager=agent-platform-tenants',
    '-f',
    file,
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('kubectl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', (error) => reject(new KubectlError(`kubectl could not start: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new KubectlError(
            `kubectl apply in context '${context}' failed (exit ${code}): ${stderr.trim().split('\n')[0]}`,
          ),
        );
    });
  });
}

/** Connection settings of the pool with the tenant role as the user. */
function tenantConnection(pool: pg.Pool, tenantId: string): pg.ClientConfig {
  const options = (pool as unknown as { options: pg.PoolConfig }).options;
  if (options.connectionString) {
    const url = new URL(options.connectionString);
    url.username = encodeURIComponent(tenantId);
    url.password = '';
    return { connectionString: url.toString() };
  }
  return {
    host: options.host,
    port: options.port,
    database: options.database,
    user: tenantId,
  };
}

/** Where the tenant connects: the cell database the pool points at. */
function databaseEndpoint(pool: pg.Pool): { host: string; port: number; dbname: string } {
  const options = (pool as unknown as { options: pg.PoolConfig }).options;
  if (options.connectionString) {
    const url = new URL(options.connectionString);
    return {
      host: url.hostname,
      port: Number(url.port || 5432),
      dbname: decodeURIComponent(url.pathname.slice(1)),
    };
  }
  return {
    host: options.host ?? 'localhost',
    port: options.port ?? 5432,
    dbname: options.database ?? 'postgres',
  };
}

/** Logs in as the tenant role, writes and reads its schema in a rolled-back transaction, checks settings. */
async function checkDatabaseReadiness(pool: pg.Pool, tenantId: string, tier: Tier): Promise<string[]> {
  const client = new pg.Client(tenantConnection(pool, tenantId));
  const s = pg.escapeIdentifier(tenantId);
  const wanted = sessionSettings(tier);
  try {
    await client.connect();
    const results = (await client.query(
      [
        'BEGIN',
        `INSERT INTO ${s}.agents (name, model) VALUES ('readiness-probe', 'none')`,
        `INSERT INTO ${s}.tasks (agent_id) SELECT id FROM ${s}.agents WHERE name = 'readiness-probe'`,
        `SELECT current_user AS who, count(*)::int AS n,
                json_build_object(${Object.keys(wanted)
                  .map((n) => `${pg.escapeLiteral(n)}, current_setting(${pg.escapeLiteral(n)})`)
                  .join(', ')}) AS settings
           FROM ${s}.tasks t JOIN ${s}.agents a ON a.id = t.agent_id WHERE a.name = 'readiness-probe'`,
        'ROLLBACK',
      ].join(';\n'),
    )) as unknown as pg.QueryResult[];
    const row = results[3]?.rows[0] as
      | { who: string; n: number; settings: Record<string, string> }
      | undefined;
    const problems: string[] = [];
    if (row?.who !== tenantId) problems.push(`logged in as ${row?.who}, not ${tenantId}`);
    if (row?.n !== 1) problems.push(`wrote 1 probe task but read ${row?.n}`);
    for (const [name, value] of Object.entries(wanted)) {
      if (row?.settings[name] !== value)
        problems.push(`${name} is ${row?.settings[name]} in session, tier wants ${value}`);
    }
    return problems;
  } catch (error) {
    return [`as role ${tenantId}: ${error instanceof Error ? error.message : String(error)}`];
  } finally {
    await client.end().catch(() => {});
  }
}

interface RunContext {
  readonly deps: ProvisionerDeps;
  readonly client: pg.PoolClient;
  readonly id: string;
  readonly tier: Tier;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly aws: AwsClients | null;
  readonly log: pino.Logger;
}

/** The reconcile loop for one tenant; the caller holds the tenant's advisory lock. */
async function reconcile(ctx: RunContext, initial: TenantRecord | null): Promise<CreateTenantResult> {
  const { deps, client, id, tier } = ctx;
  const started = performance.now();
  const steps: StepReport[] = [];
  let tenant = initial;
  let apiKey: { key: string; prefix: string } | undefined;
  let activated: TenantRecord | undefined;

  let failedStep: StepName | undefined;
  const step = async (name: StepName, work: () => Promise<Omit<StepReport, 'step' | 'ms'>>) => {
    const t0 = performance.now();
    const outcome = await work().catch((error) => {
      failedStep ??= name;
      throw error;
    });
    const report = { step: name, ms: Number((performance.now() - t0).toFixed(2)), ...outcome };
    steps.push(report);
    ctx.log.debug({ tenant: id, ...report }, 'step');
    if (deps.faultAfter === name) throw new InjectedFault(`injected fault after step '${name}'`);
  };

  // A same-named role onboarding did not create is refused before anything is written.
  const dbState = await inspectTenantDatabase(client, id);
  assertRoleIsOurs(dbState, id);
  try {
    await step('catalog', async () => {
      if (tenant) return { action: 'unchanged', changes: [] };
      const { rows } = await client.query<TenantRow>(
        `WITH cell AS (
           SELECT id FROM control.cells WHERE tenant_count < capacity
            ORDER BY tenant_count::numeric / capacity, id LIMIT 1),
         ins AS (
           INSERT INTO control.tenants (id, tier, cell_id, hostname)
           SELECT $1, $2, cell.id, $3 FROM cell
           ON CONFLICT (id) DO NOTHING
           RETURNING ${TENANT_COLUMNS}),
         audit AS (
           INSERT INTO control.audit_events (tenant_id, actor, action, to_status, reason, evidence)
           SELECT id, $4, 'tenant.requested', 'provisioning', $5,
                  jsonb_build_object('tier', tier, 'cell', cell_id, 'hostname', hostname) FROM ins)
         SELECT * FROM ins`,
        [id, tier.name, tenantHostname(deps.env, id), ctx.actor, ctx.reason ?? 'create requested'],
      );
      if (!rows[0])
        throw new TenantStateError(`no cell has room for tenant '${id}': add a cell to control.cells`);
      tenant = toRecord(rows[0]);
      return { action: 'applied', changes: [`insert tenant (cell ${tenant.cellId}, ${tenant.hostname})`] };
    });

    await step('secret', async () => {
      if (!ctx.aws) return { action: 'skipped', changes: [] };
      const { created } = await ensureTenantSecret(ctx.aws, deps.env, {
        username: id,
        // The tenant role has no password (IAM on RDS): this value is never set on the role.
        password: randomBytes(32).toString('base64url'),
        schema: id,
        ...databaseEndpoint(deps.pool),
      });
      return created
        ? { action: 'applied', changes: ['create secret'] }
        : { action: 'unchanged', changes: [] };
    });

    await step('budget', async () => {
      if (!ctx.aws) return { action: 'skipped', changes: [] };
      const state = await describeTenantBudget(ctx.aws, deps.env, id);
      const changes = budgetChanges(state, tier);
      if (changes.length === 0) return { action: 'unchanged', changes };
      await ensureTenantBudget(ctx.aws, deps.env, id, tier, state);
      return { action: 'applied', changes };
    });

    // The manifests do not depend on the database, so they render while PostgreSQL runs the DDL.
    const databaseStep = step('database', async () => {
      const changes = databaseChanges(dbState, id, tier);
      if (changes.length === 0 && tenant!.schemaVersion > 0) return { action: 'unchanged', changes };
      await applyTenantDatabase(client, id, tier, dbState);
      return { action: 'applied', changes: changes.length > 0 ? changes : ['record schema version'] };
    });

    const manifestsStep = step('manifests', async () => {
      const file = manifestsPath(deps, id);
      const yaml = renderFor(deps, id, tier);
      const changes: string[] = [];
      if ((await readIfExists(file)) !== yaml) {
        await writeCreatingDir(file, yaml);
        changes.push(`write ${file}`);
      }
      if (deps.kubeContext) {
        await kubectlApply(deps.kubeContext, file);
        changes.push(`kubectl apply --server-side (context ${deps.kubeContext})`);
      }
      return { action: changes.length > 0 ? 'applied' : 'unchanged', changes };
    });

    const [database, manifests] = await Promise.allSettled([databaseStep, manifestsStep]);
    for (const outcome of [database, manifests]) if (outcome.status === 'rejected') throw outcome.reason;

    await step('readiness', async () => {
      const problems = await checkDatabaseReadiness(deps.pool, id, tier);
      if (ctx.aws && !(await describeTenantBudget(ctx.aws, deps.env, id)).exists)
        problems.push('budget not found');
      if (problems.length > 0)
        throw new ReadinessError(`tenant '${id}' is not ready: ${problems.join('; ')}`);
      return { action: 'unchanged', changes: [] };
    });

    await step('activate', async () => {
      const { rows: keys } = await client.query(
        'SELECT 1 FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL LIMIT 1',
        [id],
      );
      const needsKey = keys.length === 0;
      const needsActivation = tenant!.status === 'provisioning';
      const changed = steps.some((s) => s.action === 'applied');
      if (!needsKey && !needsActivation && !changed) return { action: 'unchanged', changes: [] };
      const changes: string[] = [];
      // One round trip: the whole activation transaction, then the final row.
      const statements = ['BEGIN', 'SET LOCAL synchronous_commit = on'];
      let issued: { key: string; prefix: string } | undefined;
      if (needsKey) {
        const { sql, ...key } = apiKeyInsertStatement(id);
        issued = key;
        statements.push(
          sql,
          auditInsertStatement({
            tenantId: id,
            actor: ctx.actor,
            action: 'api-key.issued',
            evidence: { prefix: key.prefix },
          }),
        );
        changes.push(`issue api key ${key.prefix}`);
      }
      const timings = Object.fromEntries(steps.map((s) => [s.step, s.ms]));
      const recorded = steps.filter((s) => s.action !== 'skipped');
      const idLiteral = pg.escapeLiteral(id);
      if (needsActivation) {
        statements.push(
          `UPDATE control.tenants SET status = 'active', status_changed_at = now(), updated_at = now()
            WHERE id = ${idLiteral} AND status = 'provisioning'`,
          auditInsertStatement({
            tenantId: id,
            actor: ctx.actor,
            action: 'tenant.activated',
            fromStatus: 'provisioning',
            toStatus: 'active',
            reason: 'readiness check passed',
            evidence: { timingsMs: timings, tier: tier.name, aws: ctx.aws !== null },
          }),
        );
        changes.push('status provisioning -> active');
      } else if (changed) {
        statements.push(
          auditInsertStatement({
            tenantId: id,
            actor: ctx.actor,
            action: 'tenant.reconciled',
            reason: ctx.reason ?? 'drift repaired',
            evidence: { changes: steps.flatMap((s) => s.changes), timingsMs: timings },
          }),
        );
      }
      statements.push(
        `INSERT INTO control.provisioning_steps (tenant_id, step, state, duration_ms, error, updated_at)
         SELECT ${idLiteral}, s.step, 'done', s.ms, NULL, now()
           FROM unnest(${pg.escapeLiteral(`{${recorded.map((s) => s.step).join(',')}}`)}::text[],
                       ${pg.escapeLiteral(`{${recorded.map((s) => s.ms).join(',')}}`)}::numeric[]) AS s(step, ms)
         ON CONFLICT (tenant_id, step) DO UPDATE
           SET state = 'done', duration_ms = EXCLUDED.duration_ms, error = NULL, updated_at = now()`,
        'COMMIT',
        `SELECT ${TENANT_COLUMNS} FROM control.tenants WHERE id = ${idLiteral}`,
      );
      let results: pg.QueryResult<TenantRow>[];
      try {
        results = (await client.query(statements.join(';\n'))) as unknown as pg.QueryResult<TenantRow>[];
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
      apiKey = issued;
      const row = results[results.length - 1]?.rows[0];
      if (row) activated = toRecord(row);
      return { action: 'applied', changes };
    });
  } catch (error) {
    if (!(error instanceof InjectedFault) && tenant)
      await recordFailure(ctx, failedStep ?? 'activate', steps, error);
    throw error;
  }

  steps.sort((x, y) => STEP_NAMES.indexOf(x.step) - STEP_NAMES.indexOf(y.step));
  const final = activated ?? (await readTenant(client, id))!;
  const timings: CreateTenantResult['timings'] = Object.fromEntries(steps.map((s) => [s.step, s.ms]));
  timings.total = Number((performance.now() - started).toFixed(2));
  return {
    tenant: final,
    ...(apiKey ? { apiKey } : {}),
    steps,
    timings,
    ready: true,
    changed: steps.some((s) => s.action === 'applied'),
    dryRun: false,
  };
}

/** Records where provisioning stopped, so `show` and the runbook can point at the failed step. */
async function recordFailure(
  ctx: RunContext,
  failed: StepName,
  steps: StepReport[],
  error: unknown,
): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  try {
    await ctx.client.query(
      `INSERT INTO control.provisioning_steps (tenant_id, step, state, error, updated_at)
       VALUES ($1, $2, 'failed', $3, now())
       ON CONFLICT (tenant_id, step) DO UPDATE SET state = 'failed', error = EXCLUDED.error, updated_at = now()`,
      [ctx.id, failed, message],
    );
    await recordAudit(ctx.client, {
      tenantId: ctx.id,
      actor: ctx.actor,
      action: 'tenant.provisioning-failed',
      reason: message,
      evidence: { step: failed, completed: steps.map((s) => s.step) },
    });
  } catch (recordError) {
    ctx.log.warn({ tenant: ctx.id, err: recordError }, 'could not record the failed step');
  }
}

/** Dry run: the difference between desired and actual state per step; reads only, changes nothing. */
async function plan(
  deps: ProvisionerDeps,
  id: string,
  tier: Tier,
  aws: AwsClients | null,
  forTierChange = false,
): Promise<CreateTenantResult> {
  const started = performance.now();
  const steps: StepReport[] = [];
  const add = (step: StepName, changes: string[], skipped = false) =>
    steps.push({
      step,
      action: skipped ? 'skipped' : changes.length > 0 ? 'planned' : 'unchanged',
      ms: 0,
      changes,
    });
  const tenant = await readTenant(deps.pool, id);
  if (tenant && tenant.tier !== tier.name && !forTierChange) {
    throw new TenantStateError(
      `tenant '${id}' exists with tier '${tenant.tier}', not '${tier.name}': use change-tier`,
    );
  }
  if (!tenant) add('catalog', [`insert tenant (least-loaded cell, ${tenantHostname(deps.env, id)})`]);
  else add('catalog', tenant.tier === tier.name ? [] : [`tier ${tenant.tier} -> ${tier.name}`]);
  if (aws) {
    add('secret', (await readTenantSecret(aws, deps.env, id)) ? [] : ['create secret']);
    add('budget', budgetChanges(await describeTenantBudget(aws, deps.env, id), tier));
  } else {
    add('secret', [], true);
    add('budget', [], true);
  }
  add('database', databaseChanges(await inspectTenantDatabase(deps.pool, id), id, tier));
  const file = manifestsPath(deps, id);
  const manifestChanges = (await readIfExists(file)) === renderFor(deps, id, tier) ? [] : [`write ${file}`];
  if (deps.kubeContext) manifestChanges.push(`kubectl apply --server-side (context ${deps.kubeContext})`);
  add('manifests', manifestChanges);
  const { rows } = tenant
    ? await deps.pool.query(
        'SELECT 1 FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL LIMIT 1',
        [id],
      )
    : { rows: [] };
  add('activate', [
    ...(rows.length === 0 ? ['issue api key'] : []),
    ...(tenant?.status === 'active' ? [] : ['status provisioning -> active']),
  ]);
  return {
    tenant,
    steps,
    timings: { total: Number((performance.now() - started).toFixed(2)) },
    ready: false,
    changed: false,
    dryRun: true,
  };
}

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (error) {
    if (error instanceof pg.DatabaseError) throw error;
    const options = (pool as unknown as { options: pg.PoolConfig }).options;
    const where = options.connectionString
      ? new URL(options.connectionString).host
      : `${options.host}:${options.port}`;
    throw new DatabaseUnavailableError(
      `PostgreSQL unreachable at ${where}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Runs `work` holding the tenant's advisory lock on one pooled connection. */
async function withTenantLock<T>(
  pool: pg.Pool,
  id: string,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await connect(pool);
  // A checked-out client has no 'error' listener, so a dropped connection would crash the process;
  // the failing query rejects anyway, and that error is what the caller gets.
  const ignore = () => {};
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    // Commits before activation skip the fsync wait: activation commits synchronously, which flushes
    // the earlier WAL too, and a crash before it leaves the tenant `provisioning` for the next run.
    await client.query(
      "SELECT pg_advisory_lock($1, hashtext($2)), set_config('synchronous_commit', 'off', false)",
      [TENANT_LOCK_CLASS, id],
    );
    try {
      return await work(client);
    } finally {
      await client
        .query("SELECT pg_advisory_unlock($1, hashtext($2)), set_config('synchronous_commit', 'on', false)", [
          TENANT_LOCK_CLASS,
          id,
        ])
        .catch((error) => {
          broken = error;
        });
    }
  } finally {
    client.removeListener('error', ignore);
    client.release(broken);
  }
}

/** Built once: pino construction costs more than a tenant's catalog insert. */
const SILENT = pino({ level: 'silent' });

function awsClientsFor(deps: ProvisionerDeps): AwsClients | null {
  return deps.aws?.enabled ? createAwsClients(deps.env) : null;
}

/**
 * Creates the tenant or converges it to its tier: idempotent, serialized per tenant, resumable after a
 * crash at any step. Returns once the tenant works (see `ready`), with timings per step.
 */
export async function createTenant(
  deps: ProvisionerDeps,
  request: CreateTenantRequest,
): Promise<CreateTenantResult> {
  const parsed = requestSchema.parse(request);
  const id = parseTenantId(parsed.id);
  checkAuditText('actor', parsed.actor);
  checkAuditText('reason', parsed.reason);
  const tier = getTier(parsed.tier);
  const aws = awsClientsFor(deps);
  if (parsed.dryRun) return plan(deps, id, tier, aws);
  const log = deps.logger ?? SILENT;
  return withTenantLock(deps.pool, id, async (client) => {
    const existing = await readTenant(client, id);
    if (existing && existing.tier !== tier.name) {
      throw new TenantStateError(
        `tenant '${id}' exists with tier '${existing.tier}', not '${tier.name}': use change-tier`,
      );
    }
    if (existing && existing.status !== 'provisioning' && existing.status !== 'active') {
      throw new TenantStateError(`tenant '${id}' is ${existing.status}; create does not change it`);
    }
    const result = await reconcile(
      { deps, client, id, tier, actor: parsed.actor, reason: parsed.reason, aws, log },
      existing,
    );
    log.info(
      { tenant: id, tier: tier.name, changed: result.changed, timings: result.timings },
      'tenant reconciled',
    );
    return result;
  });
}

/**
 * Moves the tenant to another tier: records it in the catalog (audited), then re-applies role limits,
 * quota manifests and the budget from the new tier. Rerunning converges.
 */
export async function changeTier(
  deps: ProvisionerDeps,
  id: string,
  tierName: string,
  actor: string,
  options: { readonly dryRun?: boolean; readonly reason?: string } = {},
): Promise<CreateTenantResult> {
  parseTenantId(id);
  const tier = getTier(tierName);
  checkAuditText('actor', actor);
  checkAuditText('reason', options.reason);
  const aws = awsClientsFor(deps);
  const log = deps.logger ?? SILENT;
  if (options.dryRun) {
    const current = await readTenant(deps.pool, id);
    if (!current) throw new TenantNotFoundError(id);
    return plan(deps, id, tier, aws, true);
  }
  return withTenantLock(deps.pool, id, async (client) => {
    const current = await readTenant(client, id);
    if (!current) throw new TenantNotFoundError(id);
    if (current.status !== 'active' && current.status !== 'provisioning') {
      throw new TenantStateError(`tenant '${id}' is ${current.status}; resume it before changing its tier`);
    }
    if (current.tier !== tier.name) {
      await client.query('BEGIN');
      try {
        await client.query('UPDATE control.tenants SET tier = $2, updated_at = now() WHERE id = $1', [
          id,
          tier.name,
        ]);
        await recordAudit(client, {
          tenantId: id,
          actor,
          action: 'tenant.tier-changed',
          reason: options.reason ?? `tier ${current.tier} -> ${tier.name}`,
          evidence: { fromTier: current.tier, toTier: tier.name },
        });
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    }
    const updated = (await readTenant(client, id))!;
    return reconcile(
      { deps, client, id, tier, actor, reason: options.reason ?? 'tier change', aws, log },
      updated,
    );
  });
}

export interface TenantDetails extends TenantRecord {
  /** The tier's limits, read from the catalog of tiers. */
  readonly limits: Tier;
  readonly activeApiKeys: number;
  readonly steps: {
    step: string;
    state: 'done' | 'failed';
    durationMs: number | null;
    error: string | null;
  }[];
}

export async function getTenant(pool: pg.Pool, id: string): Promise<TenantDetails | null> {
  const { rows } = await pool.query<
    TenantRow & { active_keys: number; steps: TenantDetails['steps'] | null }
  >(
    `SELECT ${TENANT_COLUMNS.split(', ')
      .map((c) => `t.${c}`)
      .join(', ')},
            (SELECT count(*)::int FROM control.api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS active_keys,
            (SELECT json_agg(json_build_object('step', s.step, 'state', s.state, 'durationMs', s.duration_ms::float8,
                                               'error', s.error) ORDER BY array_position($2::text[], s.step))
               FROM control.provisioning_steps s WHERE s.tenant_id = t.id) AS steps
       FROM control.tenants t WHERE t.id = $1`,
    [id, STEP_NAMES],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    ...toRecord(row),
    limits: getTier(row.tier),
    activeApiKeys: row.active_keys,
    steps: row.steps ?? [],
  };
}

export async function listTenants(pool: pg.Pool): Promise<TenantRecord[]> {
  const { rows } = await pool.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM control.tenants ORDER BY id`);
  return rows.map(toRecord);
}

export { DatabaseUnavailableError, TENANT_TABLES };

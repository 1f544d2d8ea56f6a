import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import { type BillingDeps, billingCustomerStep } from '../billing/customers.ts';
import { type EnvironmentConfig, tenantHostname } from '../config/environments.ts';
import { apiKeyInsertStatement } from './api-keys.ts';
import { auditInsertStatement, checkAuditText, recordAudit } from './audit.ts';
import type { Cell, CellDirectory } from './cells.ts';
import { DatabaseUnavailableError, TenantNotFoundError } from './errors.ts';
import { manifestObjects, type TenantCluster } from './kubernetes/cluster.ts';
import {
  DEFAULT_MANIFESTS_DIR,
  manifestsPath,
  readIfExists,
  renderTenantYaml,
  writeCreatingDir,
} from './lifecycle/manifests.ts';
import {
  clientConfig,
  inClientTransaction,
  poolConnection,
  withConnection,
  withTenantLock,
} from './lifecycle/session.ts';
import { TenantStateError, type TenantStatus } from './lifecycle/status.ts';
import {
  anyApplied,
  type RunSoFar,
  runSteps,
  type Step,
  type StepFailure,
  type StepObserver,
  type StepResult,
  stepTimings,
} from './lifecycle/steps.ts';
import { transitionStatement } from './lifecycle/transition.ts';
import {
  type AwsClients,
  type BudgetState,
  budgetChanges,
  createAwsClients,
  describeTenantBudget,
  ensureTenantBudget,
} from './tenant-aws.ts';
import {
  applyTenantDatabase,
  assertRoleIsOurs,
  databaseChanges,
  inspectTenantDatabase,
  recordInCatalog,
  sessionSettings,
  type TenantDatabaseState,
} from './tenant-database.ts';
import { parseTenantId } from './tenant-id.ts';
import { TENANT_TABLES } from './tenant-schema.ts';
import { getTier, type Tier } from './tiers.ts';

/** Provisioning steps, in the order they report. */
export const STEP_NAMES = [
  'catalog',
  'budget',
  'database',
  'manifests',
  'readiness',
  'billing',
  'activate',
] as const;
export type StepName = (typeof STEP_NAMES)[number];

export interface ProvisionerDeps {
  /** The catalog database (control schema, tenant locks, lifecycle NOTIFY); tenants cannot connect to it. */
  readonly pool: pg.Pool;
  /** The cell databases holding tenant schemas, from the env config's `cells`. */
  readonly cells: CellDirectory;
  readonly env: EnvironmentConfig;
  /** @default - the AWS step (budget) is skipped */
  readonly aws?: { readonly enabled: boolean };
  /** Where `<id>.yaml` is written. @default 'out/manifests', or no file when `kube` is given */
  readonly manifestsDir?: string;
  /** Server-side applies the tenant chart through the Kubernetes API. @default - not applied */
  readonly kube?: TenantCluster;
  /** @default - silent */
  readonly logger?: pino.Logger;
  /** Watches the steps (progress, or a simulated crash in tests). @default - none */
  readonly observer?: StepObserver;
  /** Stripe, for the billing step (customer link, subscription). @default - the billing step is skipped */
  readonly billing?: BillingDeps;
}

export { DEFAULT_MANIFESTS_DIR, TenantStateError };

/** The tenant was provisioned but does not work yet; it stays `provisioning` and a rerun retries. */
export class ReadinessError extends Error {
  override readonly name = 'ReadinessError';
}

export interface TenantRecord {
  readonly id: string;
  readonly tier: string;
  readonly status: TenantStatus;
  readonly cellId: string;
  readonly hostname: string | null;
  readonly schemaVersion: number;
  /** The tenant role's oid on its cell's server, as onboarding recorded it; null before it exists. */
  readonly roleOid: number | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly statusChangedAt: Date;
}

export type StepReport = StepResult<StepName>;

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
/** Same fields as a create: the tenant, the tier it moves to, who and why. */
export type ChangeTierRequest = CreateTenantRequest;

interface TenantRow {
  id: string;
  tier: string;
  status: TenantStatus;
  cell_id: string;
  hostname: string | null;
  schema_version: number;
  role_oid: string | null;
  created_at: Date;
  updated_at: Date;
  status_changed_at: Date;
}

const TENANT_COLUMNS =
  'id, tier, status, cell_id, hostname, schema_version, created_at, updated_at, status_changed_at';
const ROLE_OID = '(SELECT r.role_oid::int8 FROM control.tenant_roles r WHERE r.tenant_id = t.id) AS role_oid';
const TENANT_SELECT = `SELECT ${TENANT_COLUMNS.split(', ')
  .map((c) => `t.${c}`)
  .join(', ')}, ${ROLE_OID} FROM control.tenants t`;

function toRecord(row: TenantRow): TenantRecord {
  return {
    id: row.id,
    tier: row.tier,
    status: row.status,
    cellId: row.cell_id,
    hostname: row.hostname,
    schemaVersion: row.schema_version,
    roleOid: row.role_oid === null || row.role_oid === undefined ? null : Number(row.role_oid),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    statusChangedAt: row.status_changed_at,
  };
}

async function readTenant(db: pg.Pool | pg.ClientBase, id: string): Promise<TenantRecord | null> {
  const { rows } = await db.query<TenantRow>({
    name: 'provisioner-read-tenant',
    text: `${TENANT_SELECT} WHERE t.id = $1`,
    values: [id],
  });
  return rows[0] ? toRecord(rows[0]) : null;
}

/** Logs in as the tenant role, writes and reads its schema in a rolled-back transaction, checks settings. */
async function checkDatabaseReadiness(cell: Cell, tenantId: string, tier: Tier): Promise<string[]> {
  // No password: the tenant role authenticates the way its workloads do (IAM through the proxy, trust here).
  const { password: _admin, ...server } = poolConnection(cell.pool);
  const client = new pg.Client(clientConfig({ ...server, user: tenantId }));
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

interface Ctx {
  readonly deps: ProvisionerDeps;
  /** The locked session on a real run; the pool on a dry run, which only reads. */
  readonly db: pg.Pool | pg.PoolClient;
  readonly id: string;
  /** The tenant's cell: its catalog row's, or for a new tenant the least-loaded one with room. */
  readonly cell: Cell;
  readonly tier: Tier;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly aws: AwsClients | null;
  tenant: TenantRecord | null;
  /** The catalog step inserted the tenant in this run, so it has no keys yet. */
  inserted?: boolean;
  budget?: BudgetState;
  database?: TenantDatabaseState;
  apiKey?: { key: string; prefix: string };
  activated?: TenantRecord;
}

const session = (ctx: Ctx) => ctx.db as pg.PoolClient;

const catalogStep: Step<Ctx, StepName> = {
  name: 'catalog',
  async plan(ctx) {
    if (!ctx.tenant) return [`insert tenant (cell ${ctx.cell.id}, ${tenantHostname(ctx.deps.env, ctx.id)})`];
    return ctx.tenant.tier === ctx.tier.name ? [] : [`tier ${ctx.tenant.tier} -> ${ctx.tier.name}`];
  },
  async apply(ctx, planned) {
    const client = session(ctx);
    if (ctx.tenant) {
      const from = ctx.tenant.tier;
      await inClientTransaction(client, async () => {
        await client.query('UPDATE control.tenants SET tier = $2, updated_at = now() WHERE id = $1', [
          ctx.id,
          ctx.tier.name,
        ]);
        await recordAudit(client, {
          tenantId: ctx.id,
          actor: ctx.actor,
          action: 'tenant.tier-changed',
          reason: ctx.reason ?? `tier ${from} -> ${ctx.tier.name}`,
          evidence: { fromTier: from, toTier: ctx.tier.name },
        });
      });
      ctx.tenant = await readTenant(client, ctx.id);
      return planned;
    }
    const { rows } = await client.query<TenantRow>({
      name: 'provisioner-insert-tenant',
      text: `WITH ins AS (
         INSERT INTO control.tenants (id, tier, cell_id, hostname)
         SELECT $1, $2, $6, $3
         ON CONFLICT (id) DO NOTHING
         RETURNING ${TENANT_COLUMNS}, NULL::int8 AS role_oid),
       audit AS (
         INSERT INTO control.audit_events (tenant_id, actor, action, to_status, reason, evidence)
         SELECT id, $4, 'tenant.requested', 'provisioning', $5,
                jsonb_build_object('tier', tier, 'cell', cell_id, 'hostname', hostname) FROM ins)
       SELECT * FROM ins`,
      values: [
        ctx.id,
        ctx.tier.name,
        tenantHostname(ctx.deps.env, ctx.id),
        ctx.actor,
        ctx.reason ?? 'create requested',
        ctx.cell.id,
      ],
    });
    if (!rows[0])
      throw new TenantStateError(`tenant '${ctx.id}' was created by another run; run create again`);
    ctx.tenant = toRecord(rows[0]);
    ctx.inserted = true;
    return [`insert tenant (cell ${ctx.tenant.cellId}, ${ctx.tenant.hostname})`];
  },
};

const budgetStep: Step<Ctx, StepName> = {
  name: 'budget',
  async plan(ctx) {
    if (!ctx.aws) return null;
    ctx.budget = await describeTenantBudget(ctx.aws, ctx.deps.env, ctx.id);
    return budgetChanges(ctx.budget, ctx.tier);
  },
  async apply(ctx, planned) {
    await ensureTenantBudget(ctx.aws!, ctx.deps.env, ctx.id, ctx.tier, ctx.budget!);
    return planned;
  },
};

const databaseStep: Step<Ctx, StepName> = {
  name: 'database',
  async plan(ctx) {
    // The catalog step before this one changes nothing in the cell: the inspection made before the run holds.
    ctx.database ??= await inspectTenantDatabase(ctx.cell.pool, ctx.id, ctx.tenant?.roleOid ?? null);
    const changes = databaseChanges(ctx.database, ctx.id, ctx.tier);
    if (changes.length === 0 && (ctx.tenant?.schemaVersion ?? 0) === 0) changes.push('record schema version');
    return changes;
  },
  async apply(ctx, planned) {
    await withConnection(ctx.cell.pool, (cell) =>
      applyTenantDatabase(cell, ctx.id, ctx.tier, ctx.database!, {
        knownVersion: ctx.tenant?.schemaVersion ?? 0,
        record: recordInCatalog(session(ctx), ctx.id),
      }),
    );
    return planned;
  },
};

/** A file is written outside a cluster, or where a directory is named; in a pod the API alone is used. */
const writesFile = (deps: ProvisionerDeps) => deps.manifestsDir !== undefined || deps.kube === undefined;

// Only active or provisioning tenants get here (see refuse), so the chart carries the tier's quota.
const tenantYaml = (ctx: Ctx) => renderTenantYaml(ctx.deps.env, ctx.id, ctx.tier);

// The manifests do not depend on the database, so they render while PostgreSQL runs the DDL.
const manifestsStep: Step<Ctx, StepName> = {
  name: 'manifests',
  async plan(ctx) {
    const changes: string[] = [];
    const file = manifestsPath(ctx.deps.manifestsDir, ctx.id);
    if (writesFile(ctx.deps) && (await readIfExists(file)) !== tenantYaml(ctx)) changes.push(`write ${file}`);
    if (ctx.deps.kube) changes.push(`server-side apply the tenant chart (${ctx.deps.kube.where})`);
    return changes;
  },
  async apply(ctx, planned) {
    const file = manifestsPath(ctx.deps.manifestsDir, ctx.id);
    const yaml = tenantYaml(ctx);
    if (planned.includes(`write ${file}`)) await writeCreatingDir(file, yaml);
    if (ctx.deps.kube) await ctx.deps.kube.apply(ctx.id, manifestObjects(yaml));
    return planned;
  },
};

const readinessStep: Step<Ctx, StepName> = {
  name: 'readiness',
  check: true,
  async plan(_ctx, so) {
    return so.dryRun ? null : [];
  },
  async apply(ctx) {
    const problems = await checkDatabaseReadiness(ctx.cell, ctx.id, ctx.tier);
    if (ctx.aws && !(await describeTenantBudget(ctx.aws, ctx.deps.env, ctx.id)).exists)
      problems.push('budget not found');
    if (problems.length > 0)
      throw new ReadinessError(`tenant '${ctx.id}' is not ready: ${problems.join('; ')}`);
    return [];
  },
};

async function hasActiveKey(ctx: Ctx): Promise<boolean> {
  if (!ctx.tenant || ctx.inserted) return false;
  const { rows } = await ctx.db.query({
    name: 'provisioner-has-active-key',
    text: 'SELECT 1 FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL LIMIT 1',
    values: [ctx.id],
  });
  return rows.length > 0;
}

const activateStep: Step<Ctx, StepName> = {
  name: 'activate',
  async plan(ctx, so) {
    const changes: string[] = [];
    if (!(await hasActiveKey(ctx))) changes.push('issue api key');
    if (ctx.tenant?.status !== 'active') changes.push('status provisioning -> active');
    if (changes.length === 0 && anyApplied(so.results)) changes.push('record the repaired drift');
    return changes;
  },
  async apply(ctx, planned, so: RunSoFar<StepName>) {
    const id = ctx.id;
    const changes: string[] = [];
    // One round trip: the whole activation transaction, then the final row.
    const statements = ['BEGIN', 'SET LOCAL synchronous_commit = on'];
    let issued: { key: string; prefix: string } | undefined;
    if (planned.includes('issue api key')) {
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
    const timings = stepTimings(so.results);
    if (planned.includes('status provisioning -> active')) {
      statements.push(
        transitionStatement({
          tenantId: id,
          from: 'provisioning',
          to: 'active',
          actor: ctx.actor,
          action: 'tenant.activated',
          reason: 'readiness check passed',
          evidence: { timingsMs: timings, tier: ctx.tier.name, aws: ctx.aws !== null },
        }),
      );
      changes.push('status provisioning -> active');
    } else if (anyApplied(so.results)) {
      statements.push(
        auditInsertStatement({
          tenantId: id,
          actor: ctx.actor,
          action: 'tenant.reconciled',
          reason: ctx.reason ?? 'drift repaired',
          evidence: { changes: so.results.flatMap((r) => r.changes), timingsMs: timings },
        }),
      );
      changes.push('record the repaired drift');
    }
    const recorded = so.results.filter((r) => r.action !== 'skipped');
    const idLiteral = pg.escapeLiteral(id);
    statements.push(
      `INSERT INTO control.provisioning_steps (tenant_id, step, state, duration_ms, error, updated_at)
       SELECT ${idLiteral}, s.step, 'done', s.ms, NULL, now()
         FROM unnest(${pg.escapeLiteral(`{${recorded.map((r) => r.step).join(',')}}`)}::text[],
                     ${pg.escapeLiteral(`{${recorded.map((r) => r.ms).join(',')}}`)}::numeric[]) AS s(step, ms)
       ON CONFLICT (tenant_id, step) DO UPDATE
         SET state = 'done', duration_ms = EXCLUDED.duration_ms, error = NULL, updated_at = now()`,
      'COMMIT',
      `${TENANT_SELECT} WHERE t.id = ${idLiteral}`,
    );
    const client = session(ctx);
    let results: pg.QueryResult<TenantRow>[];
    try {
      results = (await client.query(statements.join(';\n'))) as unknown as pg.QueryResult<TenantRow>[];
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
    if (issued) ctx.apiKey = issued;
    const row = results[results.length - 1]?.rows[0];
    if (row) ctx.activated = toRecord(row);
    return changes;
  },
};

const STEPS = [
  catalogStep,
  budgetStep,
  [databaseStep, manifestsStep],
  readinessStep,
  billingCustomerStep,
  activateStep,
] as const;

/** Records where provisioning stopped, so `show` and the runbook can point at the failed step. */
async function recordFailure(ctx: Ctx, failure: StepFailure<StepName>): Promise<void> {
  if (!ctx.tenant) return;
  const message = failure.error instanceof Error ? failure.error.message : String(failure.error);
  try {
    await ctx.db.query(
      `INSERT INTO control.provisioning_steps (tenant_id, step, state, error, updated_at)
       VALUES ($1, $2, 'failed', $3, now())
       ON CONFLICT (tenant_id, step) DO UPDATE SET state = 'failed', error = EXCLUDED.error, updated_at = now()`,
      [ctx.id, failure.step, message],
    );
    await recordAudit(ctx.db, {
      tenantId: ctx.id,
      actor: ctx.actor,
      action: 'tenant.provisioning-failed',
      reason: message,
      evidence: { step: failure.step, completed: failure.completed.map((r) => r.step) },
    });
  } catch (recordError) {
    (ctx.deps.logger ?? SILENT).warn(
      { tenant: ctx.id, err: recordError },
      'could not record the failed step',
    );
  }
}

/**
 * The least-loaded cell of the env config that has room (control.cells keeps each cell's tenant count).
 * Refuses in one line, before anything is written, when every cell is full.
 */
async function placeTenant(db: pg.Pool | pg.PoolClient, cells: CellDirectory, id: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>({
    name: 'provisioner-place-tenant',
    text: `SELECT id FROM control.cells WHERE id = ANY($1) AND tenant_count < capacity
            ORDER BY tenant_count::numeric / capacity, id LIMIT 1`,
    values: [cells.ids],
  });
  if (!rows[0])
    throw new TenantStateError(
      `no cell has room for tenant '${id}': raise a cell's capacity or add a cell in the env config`,
    );
  return rows[0].id;
}

/** Built once: pino construction costs more than a tenant's catalog insert. */
const SILENT = pino({ level: 'silent' });

type Mode = 'create' | 'change-tier';

/** The checks both commands make before any step, on the row as the run sees it. */
function refuse(mode: Mode, id: string, tier: Tier, tenant: TenantRecord | null): void {
  if (mode === 'change-tier') {
    if (!tenant) throw new TenantNotFoundError(id);
    if (tenant.status !== 'active' && tenant.status !== 'provisioning')
      throw new TenantStateError(`tenant '${id}' is ${tenant.status}; resume it before changing its tier`);
    return;
  }
  if (tenant && tenant.tier !== tier.name) {
    throw new TenantStateError(
      `tenant '${id}' exists with tier '${tenant.tier}', not '${tier.name}': use change-tier`,
    );
  }
  if (tenant && tenant.status !== 'provisioning' && tenant.status !== 'active') {
    throw new TenantStateError(`tenant '${id}' is ${tenant.status}; create does not change it`);
  }
}

async function provision(
  deps: ProvisionerDeps,
  request: CreateTenantRequest,
  mode: Mode,
): Promise<CreateTenantResult> {
  const parsed = requestSchema.parse(request);
  const id = parseTenantId(parsed.id);
  checkAuditText('actor', parsed.actor);
  checkAuditText('reason', parsed.reason);
  const tier = getTier(parsed.tier);
  const aws = deps.aws?.enabled ? createAwsClients(deps.env) : null;
  const dryRun = parsed.dryRun ?? false;
  const started = performance.now();
  const reason = parsed.reason ?? (mode === 'change-tier' ? 'tier change' : undefined);
  const run = async (db: pg.Pool | pg.PoolClient): Promise<CreateTenantResult> => {
    const tenant = await readTenant(db, id);
    refuse(mode, id, tier, tenant);
    const cell = deps.cells.cell(tenant?.cellId ?? (await placeTenant(db, deps.cells, id)));
    // A same-named role onboarding did not create is refused before the catalog step writes anything.
    const database = await inspectTenantDatabase(cell.pool, id, tenant?.roleOid ?? null);
    assertRoleIsOurs(database, id);
    const ctx: Ctx = { deps, db, id, cell, tier, actor: parsed.actor, reason, aws, tenant, database };
    const steps = await runSteps(STEPS, ctx, {
      dryRun,
      ...(deps.observer ? { observer: deps.observer } : {}),
      onFailure: (failure) => recordFailure(ctx, failure),
    });
    const timings: CreateTenantResult['timings'] = stepTimings(steps);
    timings.total = Number((performance.now() - started).toFixed(2));
    return {
      tenant: dryRun ? ctx.tenant : (ctx.activated ?? (await readTenant(db, id))),
      ...(ctx.apiKey ? { apiKey: ctx.apiKey } : {}),
      steps,
      timings,
      ready: !dryRun,
      changed: anyApplied(steps),
      dryRun,
    };
  };
  if (dryRun) return run(deps.pool);
  const result = await withTenantLock(deps.pool, id, (client) => run(client), { asynchronousCommit: true });
  (deps.logger ?? SILENT).info(
    { tenant: id, tier: tier.name, changed: result.changed, timings: result.timings },
    'tenant reconciled',
  );
  return result;
}

/**
 * Creates the tenant or converges it to its tier: idempotent, serialized per tenant, resumable after a
 * crash at any step. Returns once the tenant works (see `ready`), with timings per step.
 */
export function createTenant(
  deps: ProvisionerDeps,
  request: CreateTenantRequest,
): Promise<CreateTenantResult> {
  return provision(deps, request, 'create');
}

/**
 * Moves the tenant to another tier: records it in the catalog (audited), then re-applies role limits,
 * quota manifests and the budget from the new tier. Rerunning converges.
 */
export function changeTier(deps: ProvisionerDeps, request: ChangeTierRequest): Promise<CreateTenantResult> {
  return provision(deps, request, 'change-tier');
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
      .join(', ')}, ${ROLE_OID},
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
  const { rows } = await pool.query<TenantRow>(`${TENANT_SELECT} ORDER BY t.id`);
  return rows.map(toRecord);
}

export { DatabaseUnavailableError, TENANT_TABLES };

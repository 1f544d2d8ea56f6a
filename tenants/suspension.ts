import pg from 'pg';
import type { EnvironmentConfig } from '../config/environments.ts';
import { checkAuditText } from './audit.ts';
import type { Cell, CellDirectory } from './cells.ts';
import { TenantNotFoundError } from './errors.ts';
import type { TenantCluster } from './kubernetes/cluster.ts';
import { STOP_TASKS_ANNOTATION } from './kubernetes/names.ts';
import { clusterQuotaStep, deleteRunningJobsStep } from './kubernetes/stop-work-steps.ts';
import { manifestsPath, renderTenantYaml, writeCreatingDir } from './lifecycle/manifests.ts';
import { inClientTransaction, inTenantTransaction } from './lifecycle/session.ts';
import { canTransition, type TenantStatus } from './lifecycle/status.ts';
import { runSteps, type Step, type StepObserver, type StepResult } from './lifecycle/steps.ts';
import { LIFECYCLE_CHANNEL, transition } from './lifecycle/transition.ts';
import { getTier } from './tiers.ts';

export { LIFECYCLE_CHANNEL, STOP_TASKS_ANNOTATION };

export interface SuspensionDeps {
  /** The catalog database: status, saved settings, audit and NOTIFY. */
  readonly pool: pg.Pool;
  /** The cells: the tenant role is blocked and restored on its cell's server. */
  readonly cells: CellDirectory;
  readonly env: EnvironmentConfig;
  /** Where the tenant's manifests live (`<dir>/<tenant>.yaml`). @default - no manifests written */
  readonly manifestsDir?: string;
  /** The cluster whose quota, annotation and Jobs change (tenants/kubernetes). @default - no cluster touched */
  readonly kube?: TenantCluster;
  /** Watches the steps (progress, or a simulated crash in tests). @default - none */
  readonly observer?: StepObserver;
  /**
   * A catalog session that already holds the tenant's lock (a move): the status change runs on it, since
   * a second connection would wait for that lock forever. @default - a connection from `pool`
   */
  readonly session?: pg.PoolClient;
}

export interface SuspensionOptions {
  /** Who acts: an operator, `cost-guard`, `control-plane:<sub>`. */
  readonly actor: string;
  readonly reason: string;
  /** Figures the decision relied on, kept in the audit trail. @default - none */
  readonly evidence?: Record<string, unknown>;
  /** Report what would change and change nothing. @default false */
  readonly dryRun?: boolean;
}

export type SuspensionStep = 'settings' | 'role' | 'status' | 'manifests' | 'cluster' | 'jobs';

export interface SuspensionResult {
  readonly tenantId: string;
  /** False when the tenant's status made the operation a no-op (or on a dry run). */
  readonly changed: boolean;
  readonly fromStatus: TenantStatus;
  readonly toStatus: TenantStatus;
  /** What each step did (or, on a dry run, would do), in order. */
  readonly steps: StepResult<SuspensionStep>[];
}

/** What suspendTenant changed, so resumeTenant can put it back exactly. */
export interface SavedSettings {
  readonly previousStatus: string;
  /** The tenant role's settings before suspension; null when the role did not exist. */
  readonly role: { readonly connectionLimit: number; readonly canLogin: boolean } | null;
  readonly suspendedAt: string;
}

interface TenantRow {
  id: string;
  tier: string;
  status: TenantStatus;
  cell_id: string;
}

interface Ctx {
  readonly deps: SuspensionDeps;
  /** The catalog session holding the tenant's lock and row. */
  readonly client: pg.PoolClient;
  readonly cell: Cell;
  readonly row: TenantRow;
  readonly to: TenantStatus;
  readonly action: string;
  readonly options: SuspensionOptions;
}

type RoleSettings = NonNullable<SavedSettings['role']>;

async function readRole(cell: Cell, tenantId: string): Promise<RoleSettings | null> {
  const { rows } = await cell.pool.query<{ rolconnlimit: number; rolcanlogin: boolean }>(
    'SELECT rolconnlimit, rolcanlogin FROM pg_roles WHERE rolname = $1',
    [tenantId],
  );
  return rows[0] ? { connectionLimit: rows[0].rolconnlimit, canLogin: rows[0].rolcanlogin } : null;
}

async function saveSettings(client: pg.PoolClient, tenantId: string, settings: SavedSettings | null) {
  await client.query(
    `INSERT INTO control.quota_state (tenant_id, period, saved_settings) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET saved_settings = EXCLUDED.saved_settings, updated_at = now()`,
    [tenantId, new Date().toISOString().slice(0, 7), settings === null ? null : JSON.stringify(settings)],
  );
}

async function savedSettings(client: pg.PoolClient, tenantId: string): Promise<SavedSettings | null> {
  const { rows } = await client.query<{ saved_settings: SavedSettings | null }>(
    'SELECT saved_settings FROM control.quota_state WHERE tenant_id = $1',
    [tenantId],
  );
  return rows[0]?.saved_settings ?? null;
}

const loginWord = (role: RoleSettings) => (role.canLogin ? 'LOGIN' : 'NOLOGIN');

/**
 * The role's settings to keep. The role is blocked on the cell before the catalog commits, so a role found
 * blocked while the tenant is not suspended was left by a run whose catalog commit failed: resume then
 * gives back the tier's settings rather than the block.
 */
async function settingsToSave(ctx: Ctx): Promise<RoleSettings | null> {
  const role = await readRole(ctx.cell, ctx.row.id);
  if (role && role.connectionLimit === 0 && !role.canLogin)
    return { connectionLimit: getTier(ctx.row.tier).database.connectionLimit, canLogin: true };
  return role;
}

/** Suspension keeps the role's settings before it blocks the role. */
const saveStep: Step<Ctx, SuspensionStep> = {
  name: 'settings',
  async plan(ctx) {
    const role = await settingsToSave(ctx);
    return [`save previous settings (status ${ctx.row.status}, role ${JSON.stringify(role)})`];
  },
  async apply(ctx, planned) {
    const role = await settingsToSave(ctx);
    await saveSettings(ctx.client, ctx.row.id, {
      previousStatus: ctx.row.status,
      role,
      suspendedAt: new Date().toISOString(),
    });
    return planned;
  },
};

const blockRoleStep: Step<Ctx, SuspensionStep> = {
  name: 'role',
  async plan(ctx) {
    return (await readRole(ctx.cell, ctx.row.id)) ? ['role CONNECTION LIMIT 0 NOLOGIN, sessions ended'] : [];
  },
  async apply(ctx, planned) {
    await ctx.cell.pool.query(`ALTER ROLE ${pg.escapeIdentifier(ctx.row.id)} CONNECTION LIMIT 0 NOLOGIN`);
    await ctx.cell.pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
      [ctx.row.id],
    );
    return planned;
  },
};

/** Resume puts back the saved role settings; without any (suspended by hand) the tier's are the best known. */
async function roleToRestore(ctx: Ctx): Promise<{ role: RoleSettings; source: string } | null> {
  if (ctx.row.status !== 'suspended' || !(await readRole(ctx.cell, ctx.row.id))) return null;
  const saved = await savedSettings(ctx.client, ctx.row.id);
  if (saved) return saved.role ? { role: saved.role, source: 'saved' } : null;
  return {
    role: { connectionLimit: getTier(ctx.row.tier).database.connectionLimit, canLogin: true },
    source: 'tier',
  };
}

const restoreRoleStep: Step<Ctx, SuspensionStep> = {
  name: 'role',
  async plan(ctx) {
    const target = await roleToRestore(ctx);
    return target
      ? [`role CONNECTION LIMIT ${target.role.connectionLimit} ${loginWord(target.role)} (${target.source})`]
      : [];
  },
  async apply(ctx, planned) {
    const target = (await roleToRestore(ctx))!;
    await ctx.cell.pool.query(
      `ALTER ROLE ${pg.escapeIdentifier(ctx.row.id)} CONNECTION LIMIT ${Number(target.role.connectionLimit)} ${loginWord(target.role)}`,
    );
    await saveSettings(ctx.client, ctx.row.id, null);
    return planned;
  },
};

const STATUS_WORDS: Partial<Record<TenantStatus, string>> = {
  limited: 'admission refuses new tasks',
  suspended: 'admission refuses new tasks, database logins blocked',
  active: 'admission accepts new tasks',
};

const statusStep: Step<Ctx, SuspensionStep> = {
  name: 'status',
  async plan(ctx) {
    return [`status ${ctx.row.status} -> ${ctx.to}: ${STATUS_WORDS[ctx.to]}`];
  },
  async apply(ctx, planned, so) {
    await transition(ctx.client, {
      tenantId: ctx.row.id,
      from: ctx.row.status,
      to: ctx.to,
      actor: ctx.options.actor,
      action: ctx.action,
      reason: ctx.options.reason,
      evidence: { ...ctx.options.evidence, steps: so.results.flatMap((r) => r.changes) },
    });
    return planned;
  },
};

/** Re-renders the tenant chart file (pods/jobs 0 while work is stopped): the path for runs outside a cluster. */
const manifestsStep: Step<Ctx, SuspensionStep> = {
  name: 'manifests',
  async plan(ctx) {
    const { manifestsDir } = ctx.deps;
    if (!manifestsDir) return null;
    const stop = ctx.to !== 'active';
    return [`write ${manifestsPath(manifestsDir, ctx.row.id)} (${stop ? 'pods/jobs 0' : 'tier quota'})`];
  },
  async apply(ctx, planned) {
    const { manifestsDir, env } = ctx.deps;
    const stop = ctx.to !== 'active';
    const file = manifestsPath(manifestsDir, ctx.row.id);
    await writeCreatingDir(file, renderTenantYaml(env, ctx.row.id, getTier(ctx.row.tier), stop));
    return planned;
  },
};

const STEPS: Record<'limited' | 'suspended' | 'active', readonly Step<Ctx, SuspensionStep>[]> = {
  limited: [statusStep, manifestsStep, clusterQuotaStep],
  suspended: [saveStep, blockRoleStep, statusStep, manifestsStep, clusterQuotaStep, deleteRunningJobsStep],
  active: [restoreRoleStep, statusStep, manifestsStep, clusterQuotaStep],
};

async function changeStatus(
  deps: SuspensionDeps,
  tenantId: string,
  options: SuspensionOptions,
  to: keyof typeof STEPS,
  action: string,
): Promise<SuspensionResult> {
  // Before any work: ending the role's sessions cannot be rolled back if the audit write then fails.
  checkAuditText('actor', options.actor);
  checkAuditText('reason', options.reason);
  const locked = (work: (client: pg.PoolClient) => Promise<SuspensionResult>) =>
    deps.session
      ? inClientTransaction(deps.session, () => work(deps.session!))
      : inTenantTransaction(deps.pool, tenantId, work);
  return locked(async (client) => {
    const { rows } = await client.query<TenantRow>(
      'SELECT id, tier, status::text AS status, cell_id FROM control.tenants WHERE id = $1 FOR UPDATE',
      [tenantId],
    );
    const row = rows[0];
    if (!row) throw new TenantNotFoundError(tenantId);
    // Resume lifts a limit or a suspension only; it never activates a tenant still provisioning.
    const applies = canTransition(row.status, to) && (to !== 'active' || row.status !== 'provisioning');
    if (!applies)
      return { tenantId, changed: false, fromStatus: row.status, toStatus: row.status, steps: [] };
    const dryRun = options.dryRun ?? false;
    const cell = deps.cells.cell(row.cell_id);
    const steps = await runSteps(
      STEPS[to],
      { deps, client, cell, row, to, action, options },
      {
        dryRun,
        ...(deps.observer ? { observer: deps.observer } : {}),
      },
    );
    return { tenantId, changed: !dryRun, fromStatus: row.status, toStatus: to, steps };
  });
}

/** 100%: stops new work (status `limited`, quota pods/jobs 0); deletes nothing and keeps DB access. */
export function limitTenant(deps: SuspensionDeps, tenantId: string, options: SuspensionOptions) {
  return changeStatus(deps, tenantId, options, 'limited', 'tenant.limited');
}

/**
 * 200%: reversible suspension. Saves the role's connection limit and login flag, then sets
 * CONNECTION LIMIT 0 NOLOGIN and ends the role's sessions; no data is touched.
 */
export function suspendTenant(deps: SuspensionDeps, tenantId: string, options: SuspensionOptions) {
  return changeStatus(deps, tenantId, options, 'suspended', 'tenant.suspended');
}

/** Undoes limitTenant or suspendTenant in one step: restores the saved role settings and the tier quota. */
export function resumeTenant(deps: SuspensionDeps, tenantId: string, options: SuspensionOptions) {
  return changeStatus(deps, tenantId, options, 'active', 'tenant.resumed');
}

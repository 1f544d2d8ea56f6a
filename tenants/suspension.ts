import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { type EnvironmentConfig, tenantHostname } from '../config/environments.ts';
import { renderTenantManifests } from '../constructs/tenant-namespace.ts';
import { checkAuditText, recordAudit } from './audit.ts';
import { TenantNotFoundError } from './errors.ts';
import { getTier } from './tiers.ts';
import { inTransaction, TENANT_LOCK_CLASS } from './transaction.ts';

const run = promisify(execFile);

/**
 * The platform's termination hook. On every limit, suspend and resume the catalog sends a
 * PostgreSQL NOTIFY on this channel (JSON `{tenantId, status, action}`, delivered on commit), and
 * with a kube context the namespace gets (or loses) the STOP_TASKS_ANNOTATION. Task runners
 * LISTEN here and stop the tenant's running tasks; the admission check already refuses new ones.
 */
export const LIFECYCLE_CHANNEL = 'tenant_lifecycle';
export const STOP_TASKS_ANNOTATION = 'agent-platform.io/stop-tasks';

export interface SuspensionDeps {
  readonly pool: pg.Pool;
  readonly env: EnvironmentConfig;
  /** Where the tenant's manifests live (`<dir>/<tenant>.yaml`). @default - no manifests written */
  readonly manifestsDir?: string;
  /** kubectl context to apply the manifests to. @default - nothing applied to a cluster */
  readonly kubeContext?: string;
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

export interface SuspensionResult {
  readonly tenantId: string;
  /** False when the tenant's status made the operation a no-op (or on a dry run). */
  readonly changed: boolean;
  readonly fromStatus: string;
  readonly toStatus: string;
  /** What was (or, on a dry run, would be) done, in order. */
  readonly steps: string[];
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
  status: string;
}

async function lockTenant(client: pg.PoolClient, tenantId: string): Promise<TenantRow> {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [TENANT_LOCK_CLASS, tenantId]);
  const { rows } = await client.query<TenantRow>(
    'SELECT id, tier, status::text AS status FROM control.tenants WHERE id = $1 FOR UPDATE',
    [tenantId],
  );
  if (!rows[0]) throw new TenantNotFoundError(tenantId);
  return rows[0];
}

async function setStatus(client: pg.PoolClient, tenantId: string, status: string): Promise<void> {
  await client.query(
    `UPDATE control.tenants SET status = $2::control.tenant_status, updated_at = now(), status_changed_at = now()
      WHERE id = $1`,
    [tenantId, status],
  );
}

async function saveSettings(
  client: pg.PoolClient,
  tenantId: string,
  settings: SavedSettings | null,
  period: string,
): Promise<void> {
  await client.query(
    `INSERT INTO control.quota_state (tenant_id, period, saved_settings) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET saved_settings = EXCLUDED.saved_settings, updated_at = now()`,
    [tenantId, period, settings === null ? null : JSON.stringify(settings)],
  );
}

async function notifyPlatform(client: pg.PoolClient, tenantId: string, status: string, action: string) {
  await client.query('SELECT pg_notify($1, $2)', [
    LIFECYCLE_CHANNEL,
    JSON.stringify({ tenantId, status, action }),
  ]);
}

/** Re-renders the tenant chart (pods/jobs 0 while work is stopped) and applies it when a context is given. */
async function renderQuota(deps: SuspensionDeps, row: TenantRow, stopWork: boolean): Promise<string[]> {
  if (!deps.manifestsDir) return [];
  const file = path.join(deps.manifestsDir, `${row.id}.yaml`);
  const yaml = renderTenantManifests({
    tenantId: row.id,
    tier: getTier(row.tier),
    hostname: tenantHostname(deps.env, row.id),
    // The same props the provisioner renders with, so lifting a limit restores its file byte for byte.
    privateNetworkCidr: deps.env.network.cidr,
    ...(stopWork ? { quotaOverride: { pods: 0, jobs: 0 } } : {}),
  });
  await mkdir(deps.manifestsDir, { recursive: true });
  await writeFile(file, yaml);
  const steps = [`wrote ${file} (${stopWork ? 'pods/jobs 0' : 'tier quota'})`];
  if (deps.kubeContext) {
    const context = ['--context', deps.kubeContext];
    await run('kubectl', [...context, 'apply', '--server-side', '-f', file]);
    const annotation = stopWork ? `${STOP_TASKS_ANNOTATION}=true` : `${STOP_TASKS_ANNOTATION}-`;
    await run('kubectl', [...context, 'annotate', 'namespace', row.id, annotation, '--overwrite']);
    steps.push(`applied to ${deps.kubeContext}`);
  }
  return steps;
}

const period = () => new Date().toISOString().slice(0, 7);

/** Thrown to roll back a dry run after its steps were worked out. */
class DryRun extends Error {
  constructor(readonly result: SuspensionResult) {
    super('dry run');
  }
}

async function transition(
  deps: SuspensionDeps,
  tenantId: string,
  options: SuspensionOptions,
  allowedFrom: readonly string[],
  work: (client: pg.PoolClient, row: TenantRow) => Promise<{ toStatus: string; steps: string[] }>,
  action: string,
): Promise<SuspensionResult> {
  // Before any work: ending the role's sessions cannot be rolled back if the audit write then fails.
  checkAuditText('actor', options.actor);
  checkAuditText('reason', options.reason);
  try {
    return await inTransaction(deps.pool, async (client) => {
      const row = await lockTenant(client, tenantId);
      if (!allowedFrom.includes(row.status)) {
        return { tenantId, changed: false, fromStatus: row.status, toStatus: row.status, steps: [] };
      }
      const { toStatus, steps } = await work(client, row);
      if (options.dryRun) {
        throw new DryRun({ tenantId, changed: false, fromStatus: row.status, toStatus, steps });
      }
      await setStatus(client, tenantId, toStatus);
      await notifyPlatform(client, tenantId, toStatus, action);
      await recordAudit(client, {
        tenantId,
        actor: options.actor,
        action,
        fromStatus: row.status,
        toStatus,
        reason: options.reason,
        evidence: { ...options.evidence, steps },
      });
      steps.push(...(await renderQuota(deps, row, toStatus !== 'active')));
      return { tenantId, changed: true, fromStatus: row.status, toStatus, steps };
    });
  } catch (error) {
    if (error instanceof DryRun) return error.result;
    throw error;
  }
}

/** 100%: stops new work (status `limited`, quota pods/jobs 0); deletes nothing and keeps DB access. */
export function limitTenant(
  deps: SuspensionDeps,
  tenantId: string,
  options: SuspensionOptions,
): Promise<SuspensionResult> {
  return transition(
    deps,
    tenantId,
    options,
    ['active'],
    async () => ({ toStatus: 'limited', steps: ['status limited: admission refuses new tasks'] }),
    'tenant.limited',
  );
}

/**
 * 200%: reversible suspension. Saves the role's connection limit and login flag, then sets
 * CONNECTION LIMIT 0 NOLOGIN and ends the role's sessions; no data is touched.
 */
export function suspendTenant(
  deps: SuspensionDeps,
  tenantId: string,
  options: SuspensionOptions,
): Promise<SuspensionResult> {
  return transition(
    deps,
    tenantId,
    options,
    ['active', 'limited'],
    async (client, row) => {
      const { rows } = await client.query<{ rolconnlimit: number; rolcanlogin: boolean }>(
        'SELECT rolconnlimit, rolcanlogin FROM pg_roles WHERE rolname = $1',
        [tenantId],
      );
      const role = rows[0] ? { connectionLimit: rows[0].rolconnlimit, canLogin: rows[0].rolcanlogin } : null;
      const steps = [`saved previous settings (status ${row.status}, role ${JSON.stringify(role)})`];
      if (!options.dryRun) {
        await saveSettings(
          client,
          tenantId,
          { previousStatus: row.status, role, suspendedAt: new Date().toISOString() },
          period(),
        );
      }
      if (role) {
        steps.push('role CONNECTION LIMIT 0 NOLOGIN, sessions ended');
        if (!options.dryRun) {
          await client.query(`ALTER ROLE ${pg.escapeIdentifier(tenantId)} CONNECTION LIMIT 0 NOLOGIN`);
          await client.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
            [tenantId],
          );
        }
      }
      return { toStatus: 'suspended', steps };
    },
    'tenant.suspended',
  );
}

/** Undoes limitTenant or suspendTenant in one step: restores the saved role settings and the tier quota. */
export function resumeTenant(
  deps: SuspensionDeps,
  tenantId: string,
  options: SuspensionOptions,
): Promise<SuspensionResult> {
  return transition(
    deps,
    tenantId,
    options,
    ['limited', 'suspended'],
    async (client, row) => {
      const steps: string[] = [];
      if (row.status === 'suspended') {
        const { rows } = await client.query<{ saved_settings: SavedSettings | null }>(
          'SELECT saved_settings FROM control.quota_state WHERE tenant_id = $1',
          [tenantId],
        );
        const saved = rows[0]?.saved_settings ?? null;
        const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [tenantId]);
        // Without saved settings (suspended by hand in the catalog) the tier's limit is the best known value.
        const tierRole = { connectionLimit: getTier(row.tier).database.connectionLimit, canLogin: true };
        const role = saved ? saved.role : tierRole;
        if (role && exists.rowCount === 1) {
          const login = role.canLogin ? 'LOGIN' : 'NOLOGIN';
          steps.push(
            `role CONNECTION LIMIT ${role.connectionLimit} ${login}${saved ? ' (saved)' : ' (tier)'}`,
          );
          if (!options.dryRun) {
            await client.query(
              `ALTER ROLE ${pg.escapeIdentifier(tenantId)} CONNECTION LIMIT ${Number(role.connectionLimit)} ${login}`,
            );
            await saveSettings(client, tenantId, null, period());
          }
        }
      }
      steps.push('status active: admission accepts new tasks');
      return { toStatus: 'active', steps };
    },
    'tenant.resumed',
  );
}

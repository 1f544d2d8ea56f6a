import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import type { CellDirectory } from './cells.ts';
import { TenantNotFoundError } from './errors.ts';
import { stepLines } from './lifecycle/steps.ts';
import { createTenant } from './provisioner.ts';
import {
  LIFECYCLE_CHANNEL,
  limitTenant,
  resumeTenant,
  type SuspensionDeps,
  suspendTenant,
} from './suspension.ts';
import { createCatalogDatabase, dropRoles, type TestDatabase, uniqueTenantId } from './testing/pg.ts';

const env = loadEnvironmentConfig('dev');
let db: TestDatabase;
let pool: pg.Pool;
let cells: CellDirectory;
let manifestsDir: string;
let deps: SuspensionDeps;
const roles: string[] = [];
const by = { actor: 'sre:test', reason: 'test' };

async function tenant(stem: string): Promise<string> {
  const id = uniqueTenantId(stem);
  roles.push(id);
  await createTenant(
    { pool, cells, env, aws: { enabled: false }, manifestsDir },
    { id, tier: 'starter', actor: 'test' },
  );
  return id;
}

async function roleSettings(id: string) {
  const { rows } = await pool.query(
    'SELECT rolconnlimit, rolcanlogin, rolconfig, rolvaliduntil FROM pg_roles WHERE rolname = $1',
    [id],
  );
  return rows[0];
}

async function status(id: string): Promise<string> {
  const { rows } = await pool.query('SELECT status::text AS s FROM control.tenants WHERE id = $1', [id]);
  return rows[0].s;
}

beforeAll(async () => {
  ({ db, pool, cells } = await createCatalogDatabase('suspension', 4));
  manifestsDir = await mkdtemp(path.join(tmpdir(), 'suspension-'));
  deps = { pool, cells, env, manifestsDir };
});

afterAll(async () => {
  await pool.end();
  await db.drop();
  await dropRoles(roles);
  await rm(manifestsDir, { recursive: true, force: true });
});

describe('suspension', () => {
  test('resume restores the saved role settings exactly, and the tier quota', async () => {
    const id = await tenant('res');
    // An operator-tuned limit, not the tier's: resume must bring back this value, not recompute one.
    await pool.query(`ALTER ROLE ${pg.escapeIdentifier(id)} CONNECTION LIMIT 7`);
    const before = await roleSettings(id);
    const tierYaml = await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8');

    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const events: unknown[] = [];
    listener.on('notification', (n) => events.push(JSON.parse(n.payload ?? '{}')));
    await listener.query(`LISTEN ${LIFECYCLE_CHANNEL}`);

    const suspended = await suspendTenant(deps, id, { ...by, evidence: { meterRatio: 2.5 } });
    expect(suspended).toMatchObject({ changed: true, fromStatus: 'active', toStatus: 'suspended' });
    expect(await status(id)).toBe('suspended');
    expect(await roleSettings(id)).toMatchObject({ rolconnlimit: 0, rolcanlogin: false });
    expect(await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8')).toMatch(/pods: "?0"?\n/);

    const resumed = await resumeTenant(deps, id, by);
    expect(resumed).toMatchObject({ changed: true, fromStatus: 'suspended', toStatus: 'active' });
    expect(await roleSettings(id)).toEqual(before);
    expect(await status(id)).toBe('active');
    expect(await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8')).toBe(tierYaml);
    const { rows } = await pool.query('SELECT saved_settings FROM control.quota_state WHERE tenant_id = $1', [
      id,
    ]);
    expect(rows[0].saved_settings).toBeNull();

    await new Promise((r) => setTimeout(r, 50));
    await listener.end();
    expect(events).toEqual([
      { tenantId: id, status: 'suspended', action: 'tenant.suspended' },
      { tenantId: id, status: 'active', action: 'tenant.resumed' },
    ]);
    const { rows: trail } = await pool.query(
      `SELECT action, from_status, to_status, actor, evidence FROM control.audit_events
        WHERE tenant_id = $1 AND action IN ('tenant.suspended', 'tenant.resumed') ORDER BY id`,
      [id],
    );
    expect(trail.map((t) => [t.action, t.from_status, t.to_status, t.actor])).toEqual([
      ['tenant.suspended', 'active', 'suspended', 'sre:test'],
      ['tenant.resumed', 'suspended', 'active', 'sre:test'],
    ]);
    expect(trail[0].evidence).toMatchObject({ meterRatio: 2.5 });
  });

  test('limit stops new work and keeps database access; resume lifts it', async () => {
    const id = await tenant('lim');
    const before = await roleSettings(id);
    expect(await limitTenant(deps, id, by)).toMatchObject({ changed: true, toStatus: 'limited' });
    expect(await roleSettings(id)).toEqual(before);
    expect(await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8')).toMatch(/pods: "?0"?\n/);
    expect(await resumeTenant(deps, id, by)).toMatchObject({ changed: true, toStatus: 'active' });
    expect(await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8')).not.toMatch(/pods: "?0"?\n/);
  });

  test('suspending a limited tenant, then resuming, brings it back to active with its settings', async () => {
    const id = await tenant('chain');
    const before = await roleSettings(id);
    await limitTenant(deps, id, by);
    await suspendTenant(deps, id, by);
    const { rows } = await pool.query('SELECT saved_settings FROM control.quota_state WHERE tenant_id = $1', [
      id,
    ]);
    expect(rows[0].saved_settings).toMatchObject({ previousStatus: 'limited', role: { canLogin: true } });
    await resumeTenant(deps, id, by);
    expect(await roleSettings(id)).toEqual(before);
    expect(await status(id)).toBe('active');
  });

  test('a dry run reports the steps and changes nothing', async () => {
    const id = await tenant('dry');
    const before = await roleSettings(id);
    const yaml = await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8');
    const plan = await suspendTenant(deps, id, { ...by, dryRun: true });
    expect(plan).toMatchObject({ changed: false, fromStatus: 'active', toStatus: 'suspended' });
    expect(stepLines(plan.steps).join('\n')).toMatch(/^role: role CONNECTION LIMIT 0 NOLOGIN/m);
    // Without a cluster the quota and Jobs steps are skipped (tenants/kubernetes/stop-work.test.ts runs them).
    expect(plan.steps.map((s) => s.action)).toEqual([
      'planned',
      'planned',
      'planned',
      'planned',
      'skipped',
      'skipped',
    ]);
    expect(await roleSettings(id)).toEqual(before);
    expect(await status(id)).toBe('active');
    expect(await readFile(path.join(manifestsDir, `${id}.yaml`), 'utf8')).toBe(yaml);
  });

  test('operations that do not apply to the status are no-ops', async () => {
    const id = await tenant('noop');
    expect(await resumeTenant(deps, id, by)).toMatchObject({ changed: false, toStatus: 'active' });
    await suspendTenant(deps, id, by);
    expect(await limitTenant(deps, id, by)).toMatchObject({ changed: false, toStatus: 'suspended' });
    expect(await suspendTenant(deps, id, by)).toMatchObject({ changed: false });
    expect(await status(id)).toBe('suspended');
  });

  test('an unknown tenant is a clear error', async () => {
    await expect(suspendTenant(deps, 'nobody-here', by)).rejects.toThrow(TenantNotFoundError);
  });
});

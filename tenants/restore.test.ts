import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditTrail } from './audit.ts';
import { TenantNotFoundError } from './errors.ts';
import { offboardTenant } from './offboarding.ts';
import { createTenant } from './provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import { RESTORE_STEPS, RestoreError, restoreTenant } from './restore.ts';
import { resumeTenant } from './suspension.ts';
import { crashAfter, SimulatedCrash } from './testing/crash.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let fx: ProvisioningFixture;
let archiveDir: string;
const who = { actor: 'cli:test', reason: 'customer came back' };

beforeAll(async () => {
  fx = await createProvisioningFixture('restore');
  archiveDir = await mkdtemp(path.join(tmpdir(), 'restore-archives-'));
}, 30_000);

afterAll(async () => {
  await fx?.close();
  await rm(archiveDir, { recursive: true, force: true });
});

const deps = () => ({ pool: fx.pool, cells: fx.cells });

function asTenant(id: string): pg.Client {
  const url = new URL(fx.cellUrl);
  url.username = id;
  return new pg.Client({ connectionString: url.toString() });
}

/** An offboarded tenant whose archive holds rows the tenant wrote itself; returns its id and archive. */
async function archivedTenant(stem: string): Promise<{ id: string; archive: string }> {
  const id = fx.tenantId(stem);
  await createTenant(fx.deps, { id, tier: 'starter', actor: 'test' });
  const tenant = asTenant(id);
  await tenant.connect();
  const s = pg.escapeIdentifier(id);
  await tenant.query(`INSERT INTO ${s}.agents (name, model) VALUES ('planner', 'm-1'), ('coder', 'm-2')`);
  await tenant.query(`INSERT INTO ${s}.tasks (agent_id) SELECT id FROM ${s}.agents`);
  await tenant.end();
  const result = await offboardTenant(fx.deps, id, { actor: 'test', reason: 'contract ended', archiveDir });
  return { id, archive: result.archive!.path };
}

/** Everything restore could change, to compare before and after a refused attempt. */
async function footprint(id: string) {
  const { rows } = await fx.pool.query(
    `SELECT (SELECT status::text FROM control.tenants WHERE id = $1) AS status,
            (SELECT count(*)::int FROM control.audit_events WHERE tenant_id = $1) AS audit`,
    [id],
  );
  const cell = await fx.cell.pool.query(
    `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schema,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = $1) AS role`,
    [id],
  );
  return { ...rows[0], ...cell.rows[0] };
}

describe('tenant restore', () => {
  test('brings back role, schema and rows, suspended, with the revoked keys still revoked', async () => {
    const { id, archive } = await archivedTenant('rst-ok');
    const result = await restoreTenant(deps(), id, { from: archive, ...who });
    expect(result).toMatchObject({
      status: 'suspended',
      rowCounts: { agents: 2, tasks: 2, runs: 0, events: 0 },
    });

    const catalog = await fx.pool.query(
      `SELECT t.status::text AS status,
              (SELECT count(*)::int FROM control.api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS live_keys
         FROM control.tenants t WHERE t.id = $1`,
      [id],
    );
    const cell = await fx.cell.pool.query(
      `SELECT r.rolcanlogin, r.rolconnlimit, pg_get_userbyid(n.nspowner)::text AS owner,
              (SELECT array_agg(DISTINCT tableowner::text) FROM pg_tables WHERE schemaname = r.rolname) AS table_owners
         FROM pg_roles r JOIN pg_namespace n ON n.nspname = r.rolname WHERE r.rolname = $1`,
      [id],
    );
    expect({ ...catalog.rows[0], ...cell.rows[0] }).toEqual({
      status: 'suspended',
      rolcanlogin: false,
      rolconnlimit: 0,
      owner: id,
      live_keys: 0,
      table_owners: [id],
    });
    expect((await auditTrail(fx.pool, id)).at(-1)).toMatchObject({
      action: 'tenant.restored',
      fromStatus: 'archived',
      toStatus: 'suspended',
      actor: who.actor,
    });
    // Suspended means suspended: the tenant cannot log in until an operator resumes it.
    await expect(asTenant(id).connect()).rejects.toThrow(/not permitted to log in/);

    await resumeTenant(fx.deps, id, { actor: 'cli:test', reason: 'restored on request' });
    const tenant = asTenant(id);
    await tenant.connect();
    try {
      const s = pg.escapeIdentifier(id);
      const agents = await tenant.query(`SELECT name FROM ${s}.agents ORDER BY name`);
      expect(agents.rows.map((r) => r.name)).toEqual(['coder', 'planner']);
      // Identity sequences came back with their positions: a new row does not collide.
      await tenant.query(`INSERT INTO ${s}.agents (name, model) VALUES ('reviewer', 'm-3')`);
    } finally {
      await tenant.end();
    }
  });

  test('an archive whose checksum does not match: one line, nothing changes', async () => {
    const { id, archive } = await archivedTenant('rst-sum');
    const forged = path.join(archiveDir, `${id}-forged.sql.gz`);
    const text = gunzipSync(await readFile(archive)).toString();
    await writeFile(forged, gzipSync(text.replace('planner', 'plannex')));
    await copyFile(forged, archive);
    const before = await footprint(id);
    const attempt = restoreTenant(deps(), id, { from: archive, ...who });
    await expect(attempt).rejects.toThrow(RestoreError);
    await expect(restoreTenant(deps(), id, { from: archive, ...who })).rejects.toThrow(
      /^archive .* of tenant 'rst-sum-[0-9a-f]+' has sha256 [0-9a-f]{64}, the catalog recorded [0-9a-f]{64}; nothing changed$/,
    );
    expect(await footprint(id)).toEqual(before);
  });

  test('an unknown tenant, a tenant that is not archived, and an unrecorded file are refused', async () => {
    await expect(restoreTenant(deps(), 'ghost-tenant', { from: 'x.sql.gz', ...who })).rejects.toThrow(
      TenantNotFoundError,
    );
    const live = fx.tenantId('rst-live');
    await createTenant(fx.deps, { id: live, tier: 'free', actor: 'test' });
    const before = await footprint(live);
    await expect(restoreTenant(deps(), live, { from: 'x.sql.gz', ...who })).rejects.toThrow(
      new RestoreError(
        `tenant '${live}' is active; restore brings back only an archived tenant; nothing changed`,
      ),
    );
    expect(await footprint(live)).toEqual(before);

    const { id } = await archivedTenant('rst-other');
    await expect(
      restoreTenant(deps(), id, { from: path.join(archiveDir, 'elsewhere.sql.gz'), ...who }),
    ).rejects.toThrow(/is not a recorded archive of tenant/);
  });

  test('a dry run checks the archive and changes nothing', async () => {
    const { id, archive } = await archivedTenant('rst-dry');
    const before = await footprint(id);
    const plan = await restoreTenant(deps(), id, { from: archive, ...who, dryRun: true });
    expect(plan).toMatchObject({ dryRun: true, status: 'archived', rowCounts: { agents: 2, tasks: 2 } });
    expect(plan.steps.map((s) => [s.step, s.action])).toEqual([
      ['check', 'planned'],
      ['data', 'planned'],
      ['catalog', 'planned'],
    ]);
    expect(await footprint(id)).toEqual(before);
  });

  test('a rerun after a crash between the data and the catalog finishes the catalog part', async () => {
    const { id, archive } = await archivedTenant('rst-crash');
    await restoreTenant(deps(), id, { from: archive, ...who });
    // As if the process died after psql committed and before the catalog transaction.
    await fx.pool.query("UPDATE control.tenants SET status = 'archived' WHERE id = $1", [id]);
    const again = await restoreTenant(deps(), id, { from: archive, ...who });
    expect(again.status).toBe('suspended');
    const counts = await fx.cell.pool.query(
      `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(id)}.agents`,
    );
    expect(counts.rows[0].n).toBe(2);
  });

  test.each(RESTORE_STEPS.map((s) => [s]))('a crash after step %s converges on the rerun', async (step) => {
    const { id, archive } = await archivedTenant(`rst-x${RESTORE_STEPS.indexOf(step)}`);
    await expect(
      restoreTenant({ ...deps(), observer: crashAfter(step) }, id, { from: archive, ...who }),
    ).rejects.toThrow(SimulatedCrash);
    const again = restoreTenant(deps(), id, { from: archive, ...who });
    // After the last step the tenant is back; a rerun then meets it suspended and changes nothing.
    if (step === RESTORE_STEPS.at(-1))
      await expect(again).rejects.toThrow(/is suspended; restore brings back/);
    else await expect(again).resolves.toMatchObject({ status: 'suspended' });
    expect(await footprint(id)).toMatchObject({ status: 'suspended', schema: 1, role: 1 });
  });

  test('the command prints one line and exits 1 on a checksum mismatch', async () => {
    const { id, archive } = await archivedTenant('rst-cli');
    await writeFile(archive, gzipSync('not the dump'));
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(ROOT, 'bin/tenant.ts'),
          '--no-aws',
          'restore',
          id,
          '--from',
          archive,
          '--reason',
          'back',
        ],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            DATABASE_URL: fx.database.url,
            LOG_LEVEL: 'silent',
          },
        },
        (error, _stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr }),
      );
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^error: archive .* has sha256 [0-9a-f]{64}, the catalog recorded/);
  });
});

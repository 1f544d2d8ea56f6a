import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DescribeBudgetCommand } from '@aws-sdk/client-budgets';
import { CreateSecretCommand, DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { auditTrail } from './audit.ts';
import { stepLines } from './lifecycle/steps.ts';
import { offboardTenant, verifyArchive } from './offboarding.ts';
import { createTenant } from './provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import { LIFECYCLE_CHANNEL } from './suspension.ts';
import { createAwsClients, tenantBudgetName, tenantSecretName } from './tenant-aws.ts';
import { crashAfter, SimulatedCrash } from './testing/crash.ts';
import { type MotoServer, startMoto } from './testing/moto.ts';

let fx: ProvisioningFixture;
let moto: MotoServer;
let archiveDir: string;
const who = { actor: 'cli:test', reason: 'contract ended' };

beforeAll(async () => {
  [fx, moto] = await Promise.all([createProvisioningFixture('offboarding'), startMoto()]);
}, 60_000);

afterAll(async () => {
  await fx?.close();
  await moto?.stop();
});

beforeEach(async () => {
  archiveDir = await mkdtemp(path.join(tmpdir(), 'archives-'));
  return () => rm(archiveDir, { recursive: true, force: true });
});

/** A tenant with rows written by the tenant role itself (trust auth on the test server). */
async function tenantWithRows(stem: string, deps = fx.deps): Promise<string> {
  const id = fx.tenantId(stem);
  await createTenant(deps, { id, tier: 'starter', actor: 'test' });
  const url = new URL(fx.cellUrl);
  url.username = id;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const s = pg.escapeIdentifier(id);
    await client.query(`INSERT INTO ${s}.agents (name, model) VALUES ('planner', 'm-1'), ('coder', 'm-2')`);
    await client.query(
      `INSERT INTO ${s}.tasks (agent_id, input) SELECT id, '{"goal":"ship it"}' FROM ${s}.agents`,
    );
  } finally {
    await client.end();
  }
  return id;
}

async function state(id: string) {
  const cell = await fx.cell.pool.query(
    `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schema,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = $1) AS role`,
    [id],
  );
  const { rows } = await fx.pool.query(
    `SELECT (SELECT status::text FROM control.tenants WHERE id = $1) AS status,
            (SELECT count(*)::int FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL) AS keys,
            (SELECT count(*)::int FROM control.audit_events WHERE tenant_id = $1) AS audit,
            (SELECT count(*)::int FROM control.tenant_archives WHERE tenant_id = $1) AS archives`,
    [id],
  );
  return { ...cell.rows[0], ...rows[0] };
}

test('happy path: verified archive holds the rows, then schema and role are dropped and the tenant is archived', async () => {
  const id = await tenantWithRows('offb');
  const listener = await fx.pool.connect();
  const notified: string[] = [];
  listener.on('notification', (n) => notified.push(n.payload ?? ''));
  await listener.query(`LISTEN ${LIFECYCLE_CHANNEL}`);
  const result = await offboardTenant(fx.deps, id, { ...who, archiveDir });
  // A round trip after the commits lets the backend deliver what it queued before we stop listening.
  await listener.query('SELECT 1');
  await listener.query(`UNLISTEN ${LIFECYCLE_CHANNEL}`);
  listener.release();
  expect(notified.map((p) => JSON.parse(p).status)).toEqual(['offboarding', 'archived']);

  expect(result.status).toBe('archived');
  const archive = result.archive!;
  expect(path.basename(archive.path)).toMatch(new RegExp(`^${id}-\\d{8}T\\d{6}Z\\.sql\\.gz$`));
  const bytes = await readFile(archive.path);
  expect(bytes.length).toBe(archive.bytes);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(archive.sha256);
  expect(archive.rowCounts).toEqual({ agents: 2, events: 0, runs: 0, tasks: 2 });
  const sql = gunzipSync(bytes).toString();
  expect(sql).toContain(`COPY "${id}".agents`);
  expect(sql).toMatch(/\tplanner\tm-1\t/);
  expect(sql).toContain('{"goal": "ship it"}');
  expect(sql).not.toMatch(/OWNER TO/);

  expect(await state(id)).toMatchObject({ schema: 0, role: 0, status: 'archived', keys: 0, archives: 1 });
  await expect(readFile(path.join(fx.manifestsDir, `${id}.yaml`))).rejects.toThrow(/ENOENT/);
  const transitions = (await auditTrail(fx.pool, id)).filter((e) => e.toStatus);
  expect(transitions.slice(-2)).toMatchObject([
    {
      action: 'tenant.offboarding',
      fromStatus: 'active',
      toStatus: 'offboarding',
      actor: who.actor,
      reason: who.reason,
      evidence: { login: 'NOLOGIN', revokedApiKeys: [expect.stringMatching(/^apk_/)] },
    },
    {
      action: 'tenant.archived',
      fromStatus: 'offboarding',
      toStatus: 'archived',
      evidence: { archive: { path: archive.path, sha256: archive.sha256, bytes: archive.bytes } },
    },
  ]);

  const again = await offboardTenant(fx.deps, id, { ...who, archiveDir });
  expect(again).toMatchObject({ status: 'archived', steps: [] });
}, 30_000);

test('dry run prints the plan and changes nothing', async () => {
  const id = await tenantWithRows('offb-dry');
  const before = await state(id);
  const catalog = await fx.pool.query('SELECT * FROM control.tenants WHERE id = $1', [id]);
  const result = await offboardTenant(fx.deps, id, { ...who, archiveDir, dryRun: true });

  expect(result).toMatchObject({ dryRun: true, status: 'active', archive: null });
  expect(stepLines(result.steps).join('\n')).toContain('agents 2, events 0, runs 0, tasks 2');
  expect(stepLines(result.steps).join('\n')).toContain(`drop role ${id}`);
  expect(result.steps.map((s) => [s.step, s.action])).toEqual([
    ['block', 'planned'],
    ['archive', 'planned'],
    ['verify', 'planned'],
    ['drop', 'planned'],
    ['manifests', 'planned'],
    ['aws', 'skipped'],
    ['billing', 'skipped'],
    ['archived', 'planned'],
  ]);
  expect(await state(id)).toEqual(before);
  expect((await fx.pool.query('SELECT * FROM control.tenants WHERE id = $1', [id])).rows).toEqual(
    catalog.rows,
  );
  expect(await readdir(archiveDir)).toEqual([]);
});

test('a crash after the verified archive converges on rerun with the same archive', async () => {
  const id = await tenantWithRows('offb-crash');
  await expect(
    offboardTenant({ ...fx.deps, observer: crashAfter('verify') }, id, { ...who, archiveDir }),
  ).rejects.toBeInstanceOf(SimulatedCrash);
  expect(await state(id)).toMatchObject({ schema: 1, role: 1, status: 'offboarding', archives: 1 });
  const [first] = await readdir(archiveDir);

  const result = await offboardTenant(fx.deps, id, { ...who, archiveDir });
  expect(result.steps.find((s) => s.step === 'archive')?.action).toBe('unchanged');
  expect(result.archive?.path).toBe(path.join(archiveDir, first!));
  expect(await readdir(archiveDir)).toEqual([first]);
  expect(await state(id)).toMatchObject({ schema: 0, role: 0, status: 'archived', archives: 1 });
}, 30_000);

test('a crash after the drop converges without archiving again', async () => {
  const id = await tenantWithRows('offb-drop');
  await expect(
    offboardTenant({ ...fx.deps, observer: crashAfter('drop') }, id, { ...who, archiveDir }),
  ).rejects.toBeInstanceOf(SimulatedCrash);
  expect(await state(id)).toMatchObject({ schema: 0, role: 0, status: 'offboarding' });
  const result = await offboardTenant(fx.deps, id, { ...who, archiveDir });
  expect(result.archive?.rowCounts).toEqual({ agents: 2, events: 0, runs: 0, tasks: 2 });
  expect(await readdir(archiveDir)).toHaveLength(1);
  expect(await state(id)).toMatchObject({ status: 'archived', archives: 1 });
}, 30_000);

test('an archive that fails verification leaves the schema and role in place', async () => {
  const id = await tenantWithRows('offb-bad');
  // Between the dump and its verification, the written file is replaced.
  const corrupt = {
    async afterStep(step: { step: string }) {
      if (step.step !== 'archive') return;
      const [partial] = await readdir(archiveDir);
      await writeFile(path.join(archiveDir, partial!), gzipSync('-- truncated dump\n'));
    },
  };
  await expect(offboardTenant({ ...fx.deps, observer: corrupt }, id, { ...who, archiveDir })).rejects.toThrow(
    `changed after it was written`,
  );
  expect(await state(id)).toMatchObject({ schema: 1, role: 1, status: 'offboarding', archives: 0 });
  expect(await readdir(archiveDir)).toEqual([]);

  const result = await offboardTenant(fx.deps, id, { ...who, archiveDir });
  expect(result.status).toBe('archived');
}, 30_000);

describe('refusals: one clear line, nothing changed', () => {
  test.each([
    ['Bad_Id', /^invalid tenant id "Bad_Id"/],
    ['nobody-here', /^tenant 'nobody-here' does not exist$/],
  ])('%s', async (id, message) => {
    await expect(offboardTenant(fx.deps, id, { ...who, archiveDir })).rejects.toThrow(message);
  });

  test('a tenant still provisioning', async () => {
    const id = fx.tenantId('offb-prov');
    await fx.pool.query(
      `INSERT INTO control.tenants (id, tier, status, cell_id) SELECT $1, 'free', 'provisioning', id FROM control.cells LIMIT 1`,
      [id],
    );
    await expect(offboardTenant(fx.deps, id, { ...who, archiveDir })).rejects.toThrow(
      `tenant '${id}' is provisioning: rerun create until it is active, then offboard it`,
    );
    expect(await state(id)).toMatchObject({ status: 'provisioning', audit: 0 });
  });

  test('a reason the audit trail cannot store, before logins are blocked', async () => {
    const id = await tenantWithRows('offb-nul');
    const before = await state(id);
    await expect(
      offboardTenant(fx.deps, id, { ...who, reason: 'bad\u0000reason', archiveDir }),
    ).rejects.toThrow(/reason/);
    expect(await state(id)).toEqual(before);
    const { rows } = await fx.pool.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [id]);
    expect(rows).toEqual([{ rolcanlogin: true }]);
  });
});

test('with AWS: the budget is deleted, and a tenant without a secret plans no secret deletion', async () => {
  const deps = { ...fx.deps, aws: { enabled: true } };
  const id = await tenantWithRows('offb-new', deps);
  const plan = await offboardTenant(deps, id, { ...who, archiveDir, dryRun: true });
  expect(plan.steps.find((s) => s.step === 'aws')?.changes).toEqual([
    `delete budget ${tenantBudgetName(fx.deps.env, id)}`,
  ]);
  const result = await offboardTenant(deps, id, { ...who, archiveDir });
  expect(result.steps.find((s) => s.step === 'aws')?.changes).toEqual([
    `deleted budget ${tenantBudgetName(fx.deps.env, id)}`,
  ]);
  await expect(
    createAwsClients(fx.deps.env).budgets.send(
      new DescribeBudgetCommand({
        AccountId: fx.deps.env.account,
        BudgetName: tenantBudgetName(fx.deps.env, id),
      }),
    ),
  ).rejects.toMatchObject({ name: 'NotFoundException' });
}, 30_000);

test('with AWS: a tenant onboarded before IAM auth has its secret scheduled for deletion with a recovery window', async () => {
  const deps = { ...fx.deps, aws: { enabled: true } };
  const id = await tenantWithRows('offb-aws', deps);
  const aws = createAwsClients(fx.deps.env);
  // The secret onboarding wrote before tenant roles authenticated with IAM.
  await aws.secrets.send(
    new CreateSecretCommand({
      Name: tenantSecretName(fx.deps.env, id),
      SecretString: JSON.stringify({ username: id, password: 'x'.repeat(32), schema: id }),
    }),
  );
  const result = await offboardTenant(deps, id, { ...who, archiveDir });
  expect(result.status).toBe('archived');

  await expect(
    aws.budgets.send(
      new DescribeBudgetCommand({
        AccountId: fx.deps.env.account,
        BudgetName: tenantBudgetName(fx.deps.env, id),
      }),
    ),
  ).rejects.toMatchObject({ name: 'NotFoundException' });
  const secret = await aws.secrets.send(
    new DescribeSecretCommand({ SecretId: tenantSecretName(fx.deps.env, id) }),
  );
  expect(secret.DeletedDate).toBeInstanceOf(Date);
  expect(stepLines(result.steps).join('\n')).toContain('30-day recovery window');
}, 30_000);

test('verifyArchive refuses a readable dump that lacks a table or its rows', async () => {
  const file = path.join(archiveDir, 'x.sql.gz');
  const dump = 'CREATE TABLE "t-1".agents (\n);\nCOPY "t-1".agents (id, name) FROM stdin;\n1\ta\n\\.\n';
  await writeFile(file, gzipSync(dump));
  await expect(verifyArchive(file, 't-1', { agents: 1 })).resolves.toBeUndefined();
  await expect(verifyArchive(file, 't-1', { agents: 2 })).rejects.toThrow(
    "table 'agents' has 1 COPY rows, expected 2 rows",
  );
  await expect(verifyArchive(file, 't-1', { agents: 1, tasks: 0 })).rejects.toThrow(
    "table 'tasks' has no CREATE TABLE",
  );
  await writeFile(file, 'not gzip');
  await expect(verifyArchive(file, 't-1', { agents: 1 })).rejects.toThrow(/is not readable/);
});

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { verifyApiKey } from './api-keys.ts';
import { auditTrail } from './audit.ts';
import { DatabaseUnavailableError } from './errors.ts';
import { TenantCluster } from './kubernetes/cluster.ts';
import { KubeApiError } from './kubernetes/config.ts';
import { contractKubeConfig, startContractCluster } from './kubernetes/testing/fixture.ts';
import { latestVersion, shippedMigrations } from './migrations/files.ts';
import {
  changeTier,
  createTenant,
  getTenant,
  listTenants,
  type ProvisionerDeps,
  STEP_NAMES,
  TenantStateError,
} from './provisioner.ts';
import { createProvisioningFixture, footprint, type ProvisioningFixture } from './provisioning-fixture.ts';
import {
  AwsServiceError,
  AwsUnavailableError,
  createAwsClients,
  describeTenantBudget,
  tenantSecretName,
} from './tenant-aws.ts';
import { inspectTenantDatabase } from './tenant-database.ts';
import { TenantIdError } from './tenant-id.ts';
import { crashAfter, SimulatedCrash } from './testing/crash.ts';
import { type MotoServer, startMoto } from './testing/moto.ts';
import { getTier, TierError } from './tiers.ts';

let fx: ProvisioningFixture;
let moto: MotoServer;
let awsDeps: ProvisionerDeps;

beforeAll(async () => {
  [fx, moto] = await Promise.all([createProvisioningFixture('provisioner', 12), startMoto()]);
  awsDeps = { ...fx.deps, aws: { enabled: true } };
});

afterAll(async () => {
  await moto?.stop();
  await fx?.close();
});

/** Everything a tenant is made of, with its id replaced so two tenants compare equal. */
async function snapshot(deps: ProvisionerDeps, id: string) {
  const pool = deps.pool;
  const tenant = await getTenant(pool, id);
  const cell = deps.cells.cell(tenant?.cellId ?? 'cell-1').pool;
  const objects = await cell.query(
    `SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner, c.relacl::text[] AS acl
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY c.relname`,
    [id],
  );
  const rights = await cell.query(
    `SELECT has_database_privilege($1, current_database(), 'CONNECT') AS connect,
            has_schema_privilege($1, 'public', 'CREATE') AS public_create`,
    [id],
  );
  const catalogRights = await pool.query(
    `SELECT has_database_privilege($1, current_database(), 'CONNECT') AS catalog_connect,
            has_schema_privilege($1, 'control', 'USAGE') AS control_usage`,
    [id],
  );
  const aws = deps.aws?.enabled ? createAwsClients(deps.env) : null;
  const state = {
    tenant: tenant && {
      tier: tenant.tier,
      status: tenant.status,
      cellId: tenant.cellId,
      hostname: tenant.hostname,
      schemaVersion: tenant.schemaVersion,
      activeApiKeys: tenant.activeApiKeys,
    },
    // Two tenants' roles have different oids; everything else about them is the same.
    database: { ...(await inspectTenantDatabase(cell, id, tenant?.roleOid ?? null)), roleOid: 'oid' },
    objects: objects.rows,
    rights: { ...rights.rows[0], ...catalogRights.rows[0] },
    audit: (await auditTrail(pool, id)).map((e) => [e.action, e.fromStatus, e.toStatus]),
    manifests: await readFile(path.join(deps.manifestsDir!, `${id}.yaml`), 'utf8'),
    budget: aws ? await describeTenantBudget(aws, deps.env, id) : null,
  };
  return JSON.parse(JSON.stringify(state).replaceAll(id, '<id>'));
}

describe('create', () => {
  test('creates a working tenant with AWS, and reports every step', async () => {
    const id = fx.tenantId('create');
    const result = await createTenant(awsDeps, { id, tier: 'pro', actor: 'test' });
    expect(result.ready).toBe(true);
    expect(result.tenant).toMatchObject({
      id,
      tier: 'pro',
      status: 'active',
      cellId: 'cell-1',
      schemaVersion: latestVersion(shippedMigrations()),
    });
    expect(result.tenant?.hostname).toBe(`${id}.app.dev.agents.example.com`);
    expect(result.steps.map((s) => s.step)).toEqual([...STEP_NAMES]);
    // Billing is off without Stripe (billing/customers.test.ts covers it on).
    expect(
      result.steps.every((s) => s.action === 'applied' || s.step === 'readiness' || s.step === 'billing'),
    ).toBe(true);
    expect(Object.keys(result.timings)).toEqual([...STEP_NAMES, 'total']);
    await expect(verifyApiKey(fx.pool, result.apiKey!.key)).resolves.toEqual({
      tenantId: id,
      prefix: result.apiKey!.prefix,
    });

    const db = await inspectTenantDatabase(fx.cell.pool, id, result.tenant!.roleOid);
    const tier = getTier('pro');
    expect(db.connectionLimit).toBe(tier.database.connectionLimit);
    expect(db.settings).toEqual({
      statement_timeout: String(tier.database.statementTimeoutMs),
      idle_in_transaction_session_timeout: String(tier.database.idleInTransactionTimeoutMs),
      temp_file_limit: String(tier.database.tempFileLimitKb),
    });
    expect(db.tables).toEqual(['agents', 'events', 'runs', 'tasks']);
    expect(db.schemaOwnedByRole).toBe(true);
    expect(db.schemaAcl.some((e) => e.startsWith('='))).toBe(false);

    const aws = createAwsClients(fx.deps.env);
    // Tenant roles authenticate with IAM through RDS Proxy: onboarding creates no per-tenant secret.
    await expect(
      aws.secrets.send(new DescribeSecretCommand({ SecretId: tenantSecretName(fx.deps.env, id) })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    const budget = await describeTenantBudget(aws, fx.deps.env, id);
    expect(budget).toEqual({ exists: true, limitUsd: tier.monthlyCostBudgetUsd, thresholds: [90, 100, 200] });
    expect(tenantSecretName(fx.deps.env, id)).toBe(`agent-platform/dev/tenants/${id}/database`);

    const asTenant = new pg.Client({ connectionString: fx.cellUrl.replace('postgres@', `${id}@`) });
    await asTenant.connect();
    const { rows } = await asTenant.query(
      "SELECT current_user AS who, current_setting('temp_file_limit') AS temp",
    );
    await asTenant.end();
    expect(rows[0]).toEqual({ who: id, temp: '1GB' });

    const yaml = await readFile(path.join(fx.manifestsDir, `${id}.yaml`), 'utf8');
    const quota = parseAllDocuments(yaml)
      .map((d) => d.toJS())
      .find((d) => d.kind === 'ResourceQuota');
    expect(quota.spec.hard.pods).toBe(tier.kubernetes.pods);
    expect((await auditTrail(fx.pool, id)).map((e) => e.action)).toEqual([
      'tenant.requested',
      'api-key.issued',
      'tenant.activated',
    ]);
  });

  test('a second run changes nothing and issues no key', async () => {
    const id = fx.tenantId('rerun');
    await createTenant(fx.deps, { id, tier: 'starter', actor: 'test' });
    const before = await snapshot(fx.deps, id);
    const manifestTime = (await stat(path.join(fx.manifestsDir, `${id}.yaml`))).mtimeMs;
    const again = await createTenant(fx.deps, { id, tier: 'starter', actor: 'test' });
    expect(again.changed).toBe(false);
    expect(again.apiKey).toBeUndefined();
    expect(again.ready).toBe(true);
    expect(again.steps.map((s) => s.action)).toEqual([
      'unchanged',
      'skipped',
      'unchanged',
      'unchanged',
      'unchanged',
      'skipped',
      'unchanged',
    ]);
    expect(await snapshot(fx.deps, id)).toEqual(before);
    expect((await stat(path.join(fx.manifestsDir, `${id}.yaml`))).mtimeMs).toBe(manifestTime);
  });

  test('a dry run prints the plan and changes nothing', async () => {
    const id = fx.tenantId('dry');
    const before = await footprint(fx.pool, [id], fx.cell);
    const plan = await createTenant(awsDeps, { id, tier: 'free', actor: 'test', dryRun: true });
    expect(plan.dryRun).toBe(true);
    expect(plan.tenant).toBeNull();
    expect(plan.steps.filter((s) => s.action === 'planned').map((s) => s.step)).toEqual([
      'catalog',
      'budget',
      'database',
      'manifests',
      'activate',
    ]);
    expect(plan.steps.find((s) => s.step === 'database')?.changes).toContain(
      `create role ${id} (LOGIN, CONNECTION LIMIT 2)`,
    );
    expect(await footprint(fx.pool, [id], fx.cell)).toEqual(before);
    await expect(stat(path.join(fx.manifestsDir, `${id}.yaml`))).rejects.toThrow(/ENOENT/);
    expect(plan.steps.find((s) => s.step === 'readiness')?.action).toBe('skipped');
  });

  test('drift is repaired: a changed role setting is put back and audited', async () => {
    const id = fx.tenantId('drift');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    await fx.pool.query(`ALTER ROLE ${pg.escapeIdentifier(id)} CONNECTION LIMIT 99`);
    const plan = await createTenant(fx.deps, { id, tier: 'free', actor: 'test', dryRun: true });
    expect(plan.steps.find((s) => s.step === 'database')?.changes).toEqual([
      'role: connection limit 99 -> 2',
    ]);
    const fixed = await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    expect(fixed.changed).toBe(true);
    expect((await inspectTenantDatabase(fx.cell.pool, id, fixed.tenant!.roleOid)).connectionLimit).toBe(2);
    expect((await auditTrail(fx.pool, id)).at(-1)?.action).toBe('tenant.reconciled');
  });

  test('create with another tier than the catalog holds is refused', async () => {
    const id = fx.tenantId('tierclash');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    await expect(createTenant(fx.deps, { id, tier: 'pro', actor: 'test' })).rejects.toThrow(
      new RegExp(`tenant '${id}' exists with tier 'free', not 'pro': use change-tier`),
    );
  });

  test('create leaves a suspended tenant alone', async () => {
    const id = fx.tenantId('suspended');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    await fx.pool.query("UPDATE control.tenants SET status = 'suspended' WHERE id = $1", [id]);
    await expect(createTenant(fx.deps, { id, tier: 'free', actor: 'test' })).rejects.toThrow(
      TenantStateError,
    );
  });
});

describe('crash at any step converges to the state of a clean create', () => {
  let clean: unknown;

  beforeAll(async () => {
    const id = fx.tenantId('clean');
    await createTenant(awsDeps, { id, tier: 'starter', actor: 'test' });
    clean = await snapshot(awsDeps, id);
  });

  test.each(STEP_NAMES.map((s) => [s]))('fault after %s, then rerun', async (step) => {
    const id = fx.tenantId(`crash-${step.slice(0, 4)}`);
    await expect(
      createTenant({ ...awsDeps, observer: crashAfter(step) }, { id, tier: 'starter', actor: 'test' }),
    ).rejects.toThrow(SimulatedCrash);
    const resumed = await createTenant(awsDeps, { id, tier: 'starter', actor: 'test' });
    expect(resumed.ready).toBe(true);
    expect(resumed.apiKey === undefined).toBe(step === 'activate');
    expect(await snapshot(awsDeps, id)).toEqual(clean);
  });
});

describe('concurrency', () => {
  test('two concurrent creates of one id give one tenant and one key', async () => {
    const id = fx.tenantId('twin');
    const results = await Promise.all([
      createTenant(fx.deps, { id, tier: 'pro', actor: 'a' }),
      createTenant(fx.deps, { id, tier: 'pro', actor: 'b' }),
    ]);
    expect(results.every((r) => r.ready && r.tenant?.status === 'active')).toBe(true);
    expect(results.filter((r) => r.apiKey).length).toBe(1);
    const { rows } = await fx.pool.query('SELECT count(*)::int AS n FROM control.tenants WHERE id = $1', [
      id,
    ]);
    expect(rows[0].n).toBe(1);
    expect((await auditTrail(fx.pool, id)).filter((e) => e.action === 'tenant.activated')).toHaveLength(1);
  });

  test('50 concurrent creates of different ids all succeed on a pool of 12', async () => {
    const ids = Array.from({ length: 50 }, () => fx.tenantId('many'));
    const results = await Promise.all(
      ids.map((id, i) => createTenant(fx.deps, { id, tier: i % 2 ? 'free' : 'starter', actor: 'test' })),
    );
    expect(results.filter((r) => r.ready && r.apiKey).length).toBe(50);
    const listed = new Set((await listTenants(fx.pool)).map((t) => t.id));
    expect(ids.every((id) => listed.has(id))).toBe(true);
    const { rows } = await fx.pool.query("SELECT tenant_count FROM control.cells WHERE id = 'cell-1'");
    expect(rows[0].tenant_count).toBe(listed.size);
  });
});

describe('placement', () => {
  test('new tenants go to the least-loaded cell with room; with every cell full, one line and nothing written', async () => {
    const two = await createProvisioningFixture('placement', 4, { cells: 2, capacity: 2 });
    try {
      const ids = ['a', 'b', 'c', 'd'].map((s) => two.tenantId(`placed-${s}`));
      const cells: string[] = [];
      for (const id of ids) {
        const result = await createTenant(two.deps, { id, tier: 'free', actor: 'test' });
        cells.push(result.tenant!.cellId);
        const { rows } = await two.cells
          .cell(result.tenant!.cellId)
          .pool.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [id]);
        expect(rows[0].n).toBe(1);
      }
      expect(cells).toEqual(['cell-1', 'cell-2', 'cell-1', 'cell-2']);
      const full = two.tenantId('placed-e');
      const before = await footprint(two.pool, [full], two.cell);
      await expect(createTenant(two.deps, { id: full, tier: 'free', actor: 'test' })).rejects.toThrow(
        `no cell has room for tenant '${full}': raise a cell's capacity or add a cell in the env config`,
      );
      expect(await footprint(two.pool, [full], two.cell)).toEqual(before);
    } finally {
      await two.close();
    }
  });
});

describe('bad input gives one clear error and changes nothing', () => {
  test.each(['Acme', '1abc', 'ab', 'a'.repeat(31), 'admin', 'pg_x', 'a;drop', 'a b', 'acmé', ''])(
    'id %j',
    async (id) => {
      const before = await footprint(fx.pool, [id], fx.cell);
      await expect(createTenant(fx.deps, { id, tier: 'pro', actor: 'test' })).rejects.toThrow(TenantIdError);
      expect(await footprint(fx.pool, [id], fx.cell)).toEqual(before);
    },
  );

  test('an unknown tier', async () => {
    const id = fx.tenantId('gold');
    const before = await footprint(fx.pool, [id], fx.cell);
    await expect(createTenant(fx.deps, { id, tier: 'gold', actor: 'test' })).rejects.toThrow(TierError);
    expect(await footprint(fx.pool, [id], fx.cell)).toEqual(before);
  });

  test('PostgreSQL unreachable', async () => {
    const id = fx.tenantId('nopg');
    const before = await footprint(fx.pool, [id], fx.cell);
    const dead = new pg.Pool({ connectionString: 'postgresql://postgres@127.0.0.1:1/none', max: 1 });
    await expect(
      createTenant({ ...fx.deps, pool: dead }, { id, tier: 'pro', actor: 'test' }),
    ).rejects.toThrow(
      new DatabaseUnavailableError('PostgreSQL unreachable at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1'),
    );
    await dead.end();
    expect(await footprint(fx.pool, [id], fx.cell)).toEqual(before);
  });

  test('AWS unreachable leaves the tenant provisioning with no role or schema; a rerun completes it', async () => {
    const id = fx.tenantId('noaws');
    const before = await footprint(fx.pool, [id], fx.cell);
    const endpoint = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:1';
    try {
      await expect(createTenant(awsDeps, { id, tier: 'pro', actor: 'test' })).rejects.toThrow(
        AwsUnavailableError,
      );
    } finally {
      process.env.AWS_ENDPOINT_URL = endpoint;
    }
    const after = await footprint(fx.pool, [id], fx.cell);
    expect(after.schemas).toBe(before.schemas);
    expect(after.roles).toBe(0);
    expect(after.keys).toBe(before.keys);
    const stuck = await getTenant(fx.pool, id);
    expect(stuck?.status).toBe('provisioning');
    expect(stuck?.steps).toEqual([
      {
        step: 'budget',
        state: 'failed',
        durationMs: null,
        error: expect.stringMatching(/unreachable during describing budget/),
      },
    ]);
    const resumed = await createTenant(awsDeps, { id, tier: 'pro', actor: 'test' });
    expect(resumed.tenant?.status).toBe('active');
    expect(resumed.apiKey).toBeDefined();
    expect((await getTenant(fx.pool, id))?.steps.every((s) => s.state === 'done')).toBe(true);
  });
});

describe('the Kubernetes API', () => {
  let api: Awaited<ReturnType<typeof startContractCluster>>;
  beforeAll(async () => {
    api = await startContractCluster();
  });
  afterAll(async () => {
    await api.server.stop();
  });
  const inCluster = () => {
    const { manifestsDir: _file, ...deps } = fx.deps;
    return { ...deps, kube: api.cluster };
  };

  test('in a cluster the chart is server-side applied through the API and no file is written', async () => {
    const id = fx.tenantId('kapi');
    const plan = await createTenant(inCluster(), { id, tier: 'free', actor: 'test', dryRun: true });
    expect(plan.steps.find((s) => s.step === 'manifests')?.changes).toEqual([
      'server-side apply the tenant chart (context contract)',
    ]);
    expect(api.server.get('Namespace', undefined, id)).toBeUndefined();
    const result = await createTenant(inCluster(), { id, tier: 'free', actor: 'test' });
    expect(result.ready).toBe(true);
    expect(api.server.get('Namespace', undefined, id)?.metadata.labels.tenant).toBe(id);
    expect(String(api.server.get('ResourceQuota', id, 'tenant-quota')?.spec.hard.pods)).toBe('5');
    await expect(stat(path.join('out', 'manifests', `${id}.yaml`))).rejects.toThrow(/ENOENT/);
  });

  test('a refused apply is one line and leaves the tenant provisioning', async () => {
    const id = fx.tenantId('kapifail');
    const kube = new TenantCluster(contractKubeConfig(api.server.url, 'expired'), 'context prod-eks');
    await expect(createTenant({ ...fx.deps, kube }, { id, tier: 'free', actor: 'test' })).rejects.toThrow(
      new KubeApiError(`tenant '${id}': Namespace ${id} (context prod-eks): 401 Unauthorized`),
    );
    const tenant = await getTenant(fx.pool, id);
    expect(tenant?.status).toBe('provisioning');
    expect(tenant?.steps.find((s) => s.step === 'manifests')?.state).toBe('failed');
  });
});

describe('changeTier', () => {
  test('re-applies role limits and quota from the new tier, audited; a dry run changes nothing', async () => {
    const id = fx.tenantId('upgrade');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    const plan = await changeTier(fx.deps, { id, tier: 'enterprise', actor: 'ops', dryRun: true });
    expect(plan.steps[0]?.changes).toEqual(['tier free -> enterprise']);
    expect((await getTenant(fx.pool, id))?.tier).toBe('free');

    const result = await changeTier(fx.deps, { id, tier: 'enterprise', actor: 'ops' });
    const tier = getTier('enterprise');
    expect(result.tenant?.tier).toBe('enterprise');
    const db = await inspectTenantDatabase(fx.cell.pool, id, result.tenant!.roleOid);
    expect(db.connectionLimit).toBe(tier.database.connectionLimit);
    expect(db.settings.statement_timeout).toBe(String(tier.database.statementTimeoutMs));
    const yaml = await readFile(path.join(fx.manifestsDir, `${id}.yaml`), 'utf8');
    expect(yaml).toContain(`pods: ${tier.kubernetes.pods}`);
    const changed = (await auditTrail(fx.pool, id)).find((e) => e.action === 'tenant.tier-changed');
    expect(changed).toMatchObject({ actor: 'ops', evidence: { fromTier: 'free', toTier: 'enterprise' } });
  });

  test('an AWS error answer is one line naming the call (moto answers UpdateBudget with HTTP 500)', async () => {
    const id = fx.tenantId('awserr');
    await createTenant(awsDeps, { id, tier: 'free', actor: 'test' });
    const failure = changeTier(awsDeps, { id, tier: 'pro', actor: 'ops' });
    await expect(failure).rejects.toThrow(AwsServiceError);
    await expect(failure).rejects.toThrow(
      new RegExp(`^AWS updating budget agent-platform-dev-tenant-${id} failed with HTTP 500: `),
    );
    expect((await getTenant(fx.pool, id))?.steps.find((s) => s.step === 'budget')?.state).toBe('failed');
  });

  test('a connection dropped mid-transaction fails the call with its own error and does not crash', async () => {
    const id = fx.tenantId('dropped');
    await createTenant(fx.deps, { id, tier: 'free', actor: 'test' });
    // Hold the tenant row so changeTier waits inside its transaction, then end its session.
    const blocker = await fx.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM control.tenants WHERE id = $1 FOR UPDATE', [id]);
      const failure = changeTier(fx.deps, { id, tier: 'pro', actor: 'ops' });
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        const { rows } = await fx.pool.query(
          `SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE control.tenants SET tier%'`,
        );
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 25));
      }
      expect(pid).toBeDefined();
      await fx.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      await expect(failure).rejects.toThrow(/terminating connection due to administrator command/);
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    expect((await getTenant(fx.pool, id))?.tier).toBe('free');
  });

  test('an unknown tenant is named', async () => {
    await expect(changeTier(fx.deps, { id: 'nobody-here', tier: 'pro', actor: 'ops' })).rejects.toThrow(
      "tenant 'nobody-here' does not exist",
    );
  });
});

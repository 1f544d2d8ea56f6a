import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { loadWorkloadsConfig } from '../../config/workloads.ts';
import { renderPlatformWorkloads } from '../../constructs/platform-workloads.ts';
import type { CellDirectory } from '../cells.ts';
import { stepLines } from '../lifecycle/steps.ts';
import { createTenant } from '../provisioner.ts';
import { limitTenant, resumeTenant, suspendTenant } from '../suspension.ts';
import { createCatalogDatabase, dropRoles, type TestDatabase, uniqueTenantId } from '../testing/pg.ts';
import { getTier } from '../tiers.ts';
import { STOP_TASKS_ANNOTATION } from './names.ts';
import { startContractCluster } from './testing/fixture.ts';

const env = loadEnvironmentConfig('dev');
const tier = getTier('starter');
const maxSeconds = tier.maxTaskMinutes * 60;
const by = { actor: 'sre:test', reason: 'over budget' };
const roles: string[] = [];
let db: TestDatabase;
let pool: pg.Pool;
let cells: CellDirectory;
let api: Awaited<ReturnType<typeof startContractCluster>>;

// The admission policy the platform chart renders: the contract server runs it on every Job and Pod.
const admission = renderPlatformWorkloads({
  target: 'self-hosted',
  env: 'dev',
  image: 'registry.example.com/agent-platform:1',
  domain: 'agents.example.com',
  sizes: loadWorkloadsConfig('dev'),
  ingressClassName: 'nginx',
  ingressNamespace: 'ingress-nginx',
  dataNetworkCidr: '10.0.0.0/16',
  tlsSecretName: 'platform-tls',
  trustProxy: '1',
}).filter((m) => String(m.kind).startsWith('ValidatingAdmissionPolicy'));

beforeAll(async () => {
  ({ db, pool, cells } = await createCatalogDatabase('kube-stop-work', 4));
  api = await startContractCluster({ admission });
});

afterAll(async () => {
  await api.server.stop();
  await pool.end();
  await db.drop();
  await dropRoles(roles);
});

const deps = () => ({ pool, cells, env, kube: api.cluster });

/** An onboarded tenant, its chart applied through the API as in a cluster. */
async function tenant(stem: string): Promise<string> {
  const id = uniqueTenantId(stem);
  roles.push(id);
  await createTenant({ ...deps(), aws: { enabled: false } }, { id, tier: tier.name, actor: 'test' });
  return id;
}

async function submitJob(id: string, name: string, deadline: number | null = maxSeconds) {
  const spec = deadline === null ? {} : { activeDeadlineSeconds: deadline };
  const res = await fetch(`${api.server.url}/apis/batch/v1/namespaces/${id}/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name },
      spec: {
        ...spec,
        template: {
          spec: { ...spec, restartPolicy: 'Never', containers: [{ name: 'task', image: 'worker:1' }] },
        },
      },
    }),
  });
  return { status: res.status, body: (await res.json()) as { message?: string } };
}

/** A Job admitted by the deadline policy and running (its Pod created by the Job controller's stand-in). */
async function runningJob(id: string, name: string) {
  expect((await submitJob(id, name)).status).toBe(201);
  api.server.startJob(id, name);
}

describe('stopping work in the cluster', () => {
  test('the admission policy refuses a Job without a deadline in a tenant namespace', async () => {
    const id = await tenant('kadmit');
    const refused = await submitJob(id, 'forever', null);
    expect(refused.status).toBe(422);
    expect(refused.body.message).toContain(
      `denied request: spec.activeDeadlineSeconds must be set and at most ${maxSeconds} seconds`,
    );
    expect((await submitJob(id, 'too-long', maxSeconds + 1)).status).toBe(422);
    expect(api.server.list('Job', id)).toEqual([]);
  });

  test('limiting stops new Jobs and the admitted running Job survives', async () => {
    const id = await tenant('klimit');
    await runningJob(id, 'task-1');
    const result = await limitTenant(deps(), id, by);
    expect(stepLines(result.steps)).toContain(
      `cluster: quota pods ${tier.kubernetes.pods} -> 0, jobs ${tier.kubernetes.jobs} -> 0; namespace ${STOP_TASKS_ANNOTATION}=true (context contract)`,
    );
    expect(result.steps.map((s) => s.step)).not.toContain('jobs');
    expect(api.server.get('Job', id, 'task-1')).toBeDefined();
    expect(api.server.list('Pod', id)).toHaveLength(1);
    expect(api.server.get('Namespace', undefined, id)!.metadata.annotations[STOP_TASKS_ANNOTATION]).toBe(
      'true',
    );
    const refused = await submitJob(id, 'task-2');
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('exceeded quota: tenant-quota');
  });

  test('suspension lists the running Jobs on a dry run, then deletes them with their Pods', async () => {
    const id = await tenant('ksusp');
    await runningJob(id, 'task-a');
    await runningJob(id, 'task-b');
    expect((await submitJob(id, 'finished')).status).toBe(201);
    api.server.get('Job', id, 'finished')!.status = { conditions: [{ type: 'Complete', status: 'True' }] };

    const plan = await suspendTenant(deps(), id, { ...by, dryRun: true });
    expect(plan.steps.find((s) => s.step === 'jobs')).toMatchObject({
      action: 'planned',
      changes: [
        `delete Job ${id}/task-a (propagationPolicy Background)`,
        `delete Job ${id}/task-b (propagationPolicy Background)`,
      ],
    });
    expect(api.server.list('Job', id)).toHaveLength(3);
    expect(await api.cluster.readWorkCounts(id)).toEqual({
      pods: tier.kubernetes.pods,
      jobs: tier.kubernetes.jobs,
    });

    const done = await suspendTenant(deps(), id, by);
    expect(done.steps.find((s) => s.step === 'jobs')?.changes).toEqual([
      `deleted Job ${id}/task-a (propagationPolicy Background)`,
      `deleted Job ${id}/task-b (propagationPolicy Background)`,
    ]);
    expect(api.server.list('Job', id).map((j) => j.metadata.name)).toEqual(['finished']);
    expect(api.server.list('Pod', id)).toEqual([]);
    expect(await api.cluster.readWorkCounts(id)).toEqual({ pods: 0, jobs: 0 });
  });

  test('a limited tenant that is then suspended loses its running Job too', async () => {
    const id = await tenant('klimsusp');
    await runningJob(id, 'late');
    await limitTenant(deps(), id, by);
    expect(api.server.get('Job', id, 'late')).toBeDefined();
    const result = await suspendTenant(deps(), id, by);
    expect(result.steps.find((s) => s.step === 'cluster')?.action).toBe('unchanged');
    expect(api.server.get('Job', id, 'late')).toBeUndefined();
  });

  test('resume gives back the tier counts and removes the annotation; new Jobs are admitted again', async () => {
    const id = await tenant('kres');
    await suspendTenant(deps(), id, by);
    await resumeTenant(deps(), id, { ...by, reason: 'paid' });
    expect(await api.cluster.readWorkCounts(id)).toEqual({
      pods: tier.kubernetes.pods,
      jobs: tier.kubernetes.jobs,
    });
    expect(api.server.get('Namespace', undefined, id)!.metadata.annotations).not.toHaveProperty(
      STOP_TASKS_ANNOTATION,
    );
    expect((await submitJob(id, 'again')).status).toBe(201);
  });

  test('a cluster failure rolls the status back, and a rerun converges', async () => {
    const id = await tenant('kfail');
    await runningJob(id, 'stuck');
    api.server.get('Namespace', undefined, id)!.metadata.labels.tenant = 'someone-else';
    await expect(suspendTenant(deps(), id, by)).rejects.toThrow(
      new RegExp(`^tenant '${id}': Namespace ${id} \\(context contract\\): 422 Invalid: `),
    );
    const { rows } = await pool.query('SELECT status::text AS s FROM control.tenants WHERE id = $1', [id]);
    expect(rows[0].s).toBe('active');
    expect(api.server.get('Job', id, 'stuck')).toBeDefined();
    api.server.get('Namespace', undefined, id)!.metadata.labels.tenant = id;
    await suspendTenant(deps(), id, by);
    expect(api.server.get('Job', id, 'stuck')).toBeUndefined();
  });
});

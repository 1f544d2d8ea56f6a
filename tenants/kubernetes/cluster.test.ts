import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { renderTenantYaml } from '../lifecycle/manifests.ts';
import { getTier } from '../tiers.ts';
import { clusterDeps, manifestObjects, TenantCluster } from './cluster.ts';
import { KubeApiError, loadKubeConfig, parseKubeTarget } from './config.ts';
import { STOP_TASKS_ANNOTATION } from './names.ts';
import { KubernetesContractServer } from './testing/contract-server.ts';
import { contractKubeConfig, startContractCluster } from './testing/fixture.ts';

const env = loadEnvironmentConfig('dev');
const chart = (id: string, tier = 'starter') => manifestObjects(renderTenantYaml(env, id, getTier(tier)));

let api: Awaited<ReturnType<typeof startContractCluster>>;
beforeAll(async () => {
  api = await startContractCluster();
});
afterAll(async () => {
  await api.server.stop();
});
beforeEach(() => {
  api.server.requests.length = 0;
});

const job = (name: string, deadline = 600) => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name },
  spec: {
    activeDeadlineSeconds: deadline,
    template: {
      spec: {
        activeDeadlineSeconds: deadline,
        restartPolicy: 'Never',
        containers: [{ name: 'task', image: 'worker:1' }],
      },
    },
  },
});

async function post(url: string, body: unknown, token = api.token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('server-side apply of the tenant chart', () => {
  test('creates every object with PATCH apply-patch+yaml, our field manager and force', async () => {
    const applied = await api.cluster.apply('kube-ssa', chart('kube-ssa'));
    expect(applied).toEqual([
      'Namespace kube-ssa',
      'ResourceQuota kube-ssa/tenant-quota',
      'LimitRange kube-ssa/tenant-limits',
      'NetworkPolicy kube-ssa/tenant-isolation',
    ]);
    const writes = api.server.requests.filter((r) => r.method === 'PATCH');
    expect(writes).toHaveLength(4);
    for (const w of writes) {
      expect(w.contentType).toBe('application/apply-patch+yaml');
      expect(w.query).toMatchObject({ fieldManager: 'agent-platform-tenants', force: 'true' });
    }
    expect(String(api.server.get('ResourceQuota', 'kube-ssa', 'tenant-quota')?.spec.hard.pods)).toBe('20');
    expect(api.server.get('Namespace', undefined, 'kube-ssa')?.metadata.labels).toMatchObject({
      tenant: 'kube-ssa',
      'agent-platform.io/max-task-seconds': String(getTier('starter').maxTaskMinutes * 60),
    });
  });

  test('a second apply changes nothing but the resource version; a tier change moves the quota', async () => {
    await api.cluster.apply('kube-again', chart('kube-again'));
    const before = structuredClone(api.server.get('ResourceQuota', 'kube-again', 'tenant-quota')!);
    await api.cluster.apply('kube-again', chart('kube-again'));
    const after = api.server.get('ResourceQuota', 'kube-again', 'tenant-quota')!;
    expect({ ...after.metadata, resourceVersion: 0 }).toEqual({ ...before.metadata, resourceVersion: 0 });
    expect(after.spec).toEqual(before.spec);
    await api.cluster.apply('kube-again', chart('kube-again', 'pro'));
    expect(String(api.server.get('ResourceQuota', 'kube-again', 'tenant-quota')!.spec.hard.pods)).toBe('100');
  });

  test('a wrong token is one line naming the tenant, the object and the 401', async () => {
    const stranger = new TenantCluster(contractKubeConfig(api.server.url, 'stolen'), 'context contract');
    await expect(stranger.apply('kube-401', chart('kube-401'))).rejects.toThrow(
      /^tenant 'kube-401': Namespace kube-401 \(context contract\): 401 Unauthorized$/,
    );
  });

  test('an unreachable API server is one line too', async () => {
    const nowhere = new TenantCluster(contractKubeConfig('http://127.0.0.1:9', api.token), 'context gone');
    const error = await nowhere.readWorkCounts('kube-gone').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as Error).message).toMatch(
      /^tenant 'kube-gone': ResourceQuota kube-gone\/tenant-quota \(context gone\): /,
    );
    expect((error as Error).message).not.toContain('\n');
  });
});

describe('the contract server answers as the API server documents', () => {
  const patch = (path: string, contentType: string, body: unknown, query = '') =>
    fetch(`${api.server.url}${path}${query}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': contentType },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

  test('apply without force over another manager is a 409 Conflict naming the field; with force it wins', async () => {
    await api.cluster.apply('kube-409', chart('kube-409'));
    await api.cluster.setWorkCounts('kube-409', { pods: 0, jobs: 0 });
    const quota = chart('kube-409').find((o) => o.kind === 'ResourceQuota')!;
    const path = '/api/v1/namespaces/kube-409/resourcequotas/tenant-quota';
    const refused = await patch(path, 'application/apply-patch+yaml', quota, '?fieldManager=someone');
    expect(refused).toMatchObject({
      status: 409,
      body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Conflict', code: 409 },
    });
    expect(String(refused.body.message)).toContain(
      'conflict with "agent-platform-cost-guard": .spec.hard.pods',
    );
    expect(
      (await patch(path, 'application/apply-patch+yaml', quota, '?fieldManager=someone&force=true')).status,
    ).toBe(200);
  });

  test('apply needs a field manager (422); an unknown patch type is 415; a missing object is 404', async () => {
    const ns = chart('kube-422')[0]!;
    expect(await patch('/api/v1/namespaces/kube-422', 'application/apply-patch+yaml', ns)).toMatchObject({
      status: 422,
      body: { reason: 'Invalid', code: 422 },
    });
    expect((await patch('/api/v1/namespaces/kube-422', 'text/plain', {}, '')).status).toBe(404);
    await api.cluster.apply('kube-422', [ns]);
    expect((await patch('/api/v1/namespaces/kube-422', 'text/plain', {})).body).toMatchObject({
      reason: 'UnsupportedMediaType',
      code: 415,
    });
  });
});

describe('stopping work', () => {
  test('quota counts go to zero and back, and the annotation comes and goes (twice is harmless)', async () => {
    await api.cluster.apply('kube-stop', chart('kube-stop'));
    api.server.requests.length = 0;
    await api.cluster.setStopAnnotation('kube-stop', true);
    await api.cluster.setWorkCounts('kube-stop', { pods: 0, jobs: 0 });
    expect(await api.cluster.readWorkCounts('kube-stop')).toEqual({ pods: 0, jobs: 0 });
    const quota = api.server.get('ResourceQuota', 'kube-stop', 'tenant-quota')!;
    expect(quota.spec.hard['requests.cpu']).toBe('2');
    expect(
      api.server.get('Namespace', undefined, 'kube-stop')!.metadata.annotations[STOP_TASKS_ANNOTATION],
    ).toBe('true');
    for (const _ of [1, 2]) await api.cluster.setStopAnnotation('kube-stop', false);
    await api.cluster.setWorkCounts('kube-stop', { pods: 20, jobs: 5 });
    expect(api.server.get('Namespace', undefined, 'kube-stop')!.metadata.annotations).not.toHaveProperty(
      STOP_TASKS_ANNOTATION,
    );
    expect(await api.cluster.readWorkCounts('kube-stop')).toEqual({ pods: 20, jobs: 5 });
    const patches = api.server.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => [p.contentType, p.query.fieldManager])).toEqual(
      Array(patches.length).fill(['application/json-patch+json', 'agent-platform-cost-guard']),
    );
  });

  test('a namespace without its tenant label is refused: the patch tests the label first', async () => {
    const made = await post(`${api.server.url}/api/v1/namespaces`, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'kube-plain', annotations: {} },
    });
    expect(made.status).toBe(201);
    await expect(api.cluster.setStopAnnotation('kube-plain', true)).rejects.toThrow(
      /^tenant 'kube-plain': Namespace kube-plain \(context contract\): 422 Invalid: /,
    );
    expect(api.server.get('Namespace', undefined, 'kube-plain')!.metadata.annotations).toEqual({});
  });

  test('a tenant with no namespace is a 404 naming the namespace', async () => {
    await expect(api.cluster.setWorkCounts('kube-none', { pods: 0, jobs: 0 })).rejects.toThrow(
      'tenant \'kube-none\': ResourceQuota kube-none/tenant-quota (context contract): 404 NotFound: namespaces "kube-none" not found',
    );
  });
});

describe('running Jobs', () => {
  test('lists only running Jobs and deletes them in the background with their Pods', async () => {
    await api.cluster.apply('kube-jobs', chart('kube-jobs'));
    for (const name of ['alpha', 'beta', 'done']) {
      expect(
        (await post(`${api.server.url}/apis/batch/v1/namespaces/kube-jobs/jobs`, job(name))).status,
      ).toBe(201);
      api.server.startJob('kube-jobs', name);
    }
    api.server.get('Job', 'kube-jobs', 'done')!.status = {
      completionTime: new Date().toISOString(),
      conditions: [{ type: 'Complete', status: 'True' }],
    };
    expect(await api.cluster.runningJobs('kube-jobs')).toEqual(['alpha', 'beta']);
    expect(await api.cluster.deleteJob('kube-jobs', 'alpha')).toBe('deleted');
    expect(await api.cluster.deleteJob('kube-jobs', 'alpha')).toBe('gone');
    const deletes = api.server.requests.filter((r) => r.method === 'DELETE');
    expect(deletes[0]!.query.propagationPolicy).toBe('Background');
    expect(
      api.server
        .list('Pod', 'kube-jobs')
        .map((p) => p.metadata.ownerReferences[0].name)
        .sort(),
    ).toEqual(['beta', 'done']);
  });

  test('without a propagation policy a Job delete orphans its Pods (why the client always sends one)', async () => {
    await api.cluster.apply('kube-orphan', chart('kube-orphan'));
    await post(`${api.server.url}/apis/batch/v1/namespaces/kube-orphan/jobs`, job('lonely'));
    api.server.startJob('kube-orphan', 'lonely');
    const res = await fetch(`${api.server.url}/apis/batch/v1/namespaces/kube-orphan/jobs/lonely`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${api.token}` },
    });
    expect(res.status).toBe(200);
    expect(api.server.list('Pod', 'kube-orphan')).toHaveLength(1);
  });

  test('list pages are followed to the end', async () => {
    await api.cluster.apply('kube-pages', chart('kube-pages'));
    for (let i = 0; i < 3; i += 1) {
      await post(`${api.server.url}/apis/batch/v1/namespaces/kube-pages/jobs`, job(`j${i}`));
    }
    const listPage = async (query: string) => {
      const res = await fetch(`${api.server.url}/apis/batch/v1/namespaces/kube-pages/jobs?${query}`, {
        headers: { authorization: `Bearer ${api.token}` },
      });
      return (await res.json()) as {
        items: { metadata: { name: string } }[];
        metadata: { continue?: string };
      };
    };
    const first = await listPage('limit=2');
    expect(first.items.map((j) => j.metadata.name)).toEqual(['j0', 'j1']);
    // The server really pages: its continue token leads to the rest, and the last page carries none.
    const rest = await listPage(`limit=2&continue=${encodeURIComponent(first.metadata.continue ?? '')}`);
    expect(rest.items.map((j) => j.metadata.name)).toEqual(['j2']);
    expect(rest.metadata.continue).toBeUndefined();
    expect(await api.cluster.runningJobs('kube-pages')).toEqual(['j0', 'j1', 'j2']);
  });
});

describe('choosing the cluster', () => {
  test.each([
    [undefined, {}, null],
    [undefined, { KUBERNETES_SERVICE_HOST: '10.100.0.1' }, { mode: 'in-cluster' }],
    ['none', { KUBERNETES_SERVICE_HOST: '10.100.0.1' }, null],
    ['in-cluster', {}, { mode: 'in-cluster' }],
    ['staging-eks', {}, { mode: 'context', context: 'staging-eks' }],
  ])('--kube-api %s with %j', (value, environment, expected) => {
    expect(parseKubeTarget(value, environment)).toEqual(expected);
  });

  test('a bad value and a missing context are one line each', () => {
    expect(() => parseKubeTarget('two words')).toThrow(
      /must be in-cluster, none or a kubeconfig context name/,
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'kubeconfig-'));
    try {
      const file = path.join(dir, 'config');
      writeFileSync(file, contractKubeConfig('http://127.0.0.1:1', 't').exportConfig());
      expect(() =>
        loadKubeConfig({ mode: 'context', context: 'prod' }, { env: { KUBECONFIG: file } }),
      ).toThrow("kubeconfig has no context 'prod' (contexts: contract)");
      expect(() => loadKubeConfig({ mode: 'in-cluster' }, { env: {} })).toThrow(
        /needs KUBERNETES_SERVICE_HOST/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('clusterDeps: files outside a cluster, the API and no file inside a pod unless a directory is named', () => {
    const saved = { ...process.env };
    try {
      delete process.env.KUBERNETES_SERVICE_HOST;
      expect(clusterDeps(undefined, undefined, 'out/manifests')).toEqual({ manifestsDir: 'out/manifests' });
      expect(clusterDeps('none', '/tmp/m', 'out/manifests')).toEqual({ manifestsDir: '/tmp/m' });
      Object.assign(process.env, { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '6443' });
      const inPod = clusterDeps(undefined, undefined, 'out/manifests');
      expect(inPod.manifestsDir).toBeUndefined();
      expect(inPod.kube?.where).toBe('in-cluster');
      expect(clusterDeps('in-cluster', '/tmp/m', 'out/manifests').manifestsDir).toBe('/tmp/m');
    } finally {
      process.env.KUBERNETES_SERVICE_HOST = saved.KUBERNETES_SERVICE_HOST;
      process.env.KUBERNETES_SERVICE_PORT = saved.KUBERNETES_SERVICE_PORT;
      if (saved.KUBERNETES_SERVICE_HOST === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      if (saved.KUBERNETES_SERVICE_PORT === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    }
  });

  test('in-cluster: the ServiceAccount token and CA reach an HTTPS API server', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'in-cluster-'));
    const tls = await (async () => {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          path.join(root, 'key.pem'),
          '-out',
          path.join(root, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      return {
        key: readFileSync(path.join(root, 'key.pem'), 'utf8'),
        cert: readFileSync(path.join(root, 'cert.pem'), 'utf8'),
      };
    })();
    const server = await KubernetesContractServer.start({ token: 'sa-token', tls });
    try {
      const sa = path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
      mkdirSync(sa, { recursive: true });
      writeFileSync(path.join(sa, 'token'), 'sa-token');
      writeFileSync(path.join(sa, 'ca.crt'), tls.cert);
      writeFileSync(path.join(sa, 'namespace'), 'platform');
      const kc = loadKubeConfig(
        { mode: 'in-cluster' },
        {
          serviceAccountRoot: root,
          env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(server.url).port },
        },
      );
      const cluster = new TenantCluster(kc, 'in-cluster');
      await cluster.apply('kube-pod', chart('kube-pod'));
      expect(await cluster.readWorkCounts('kube-pod')).toEqual({ pods: 20, jobs: 5 });
      expect(server.requests.every((r) => r.path.startsWith('/api'))).toBe(true);
    } finally {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

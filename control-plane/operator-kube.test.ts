import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContractCluster } from '../tenants/kubernetes/testing/fixture.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let dir: string;
let admin: { authorization: string };
let api: Awaited<ReturnType<typeof startContractCluster>>;
const savedKubeconfig = process.env.KUBECONFIG;

beforeAll(async () => {
  fx = await createFixture('operator-kube');
  api = await startContractCluster();
  dir = await mkdtemp(path.join(os.tmpdir(), 'cp-kube-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, api.kubeConfig.exportConfig());
  process.env.KUBECONFIG = kubeconfig;
  app = await fx.server({ KUBE_API: 'contract', MANIFESTS_DIR: dir });
  admin = bearer(await fx.token('admin'));
});
afterAll(async () => {
  if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
  else process.env.KUBECONFIG = savedKubeconfig;
  await fx.close();
  await api.server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the operator API with a cluster (KUBE_API)', () => {
  test('POST /v1/tenants applies the chart; suspend deletes the running Job', async () => {
    const id = fx.provisionedId('cpkube');
    const created = await app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: admin,
      payload: { id, tier: 'free' },
    });
    expect(created.statusCode).toBe(201);
    expect(api.server.get('Namespace', undefined, id)?.metadata.labels.tenant).toBe(id);

    const job = await fetch(`${api.server.url}/apis/batch/v1/namespaces/${id}/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'task' },
        spec: { template: {} },
      }),
    });
    expect(job.status).toBe(201);
    api.server.get('Job', id, 'task')!.status = { active: 1 };

    const suspended = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/suspend`,
      headers: admin,
      payload: { reason: 'abuse report' },
    });
    expect(suspended.statusCode).toBe(200);
    expect(suspended.json().steps.find((s: { step: string }) => s.step === 'jobs').changes).toEqual([
      `deleted Job ${id}/task (propagationPolicy Background)`,
    ]);
    expect(api.server.get('Job', id, 'task')).toBeUndefined();
    expect(await api.cluster.readWorkCounts(id)).toEqual({ pods: 0, jobs: 0 });
  });
});

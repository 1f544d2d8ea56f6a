import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { TIERS } from '../tenants/tiers.ts';
import { minimumKubernetes } from './kubernetes-minimum.ts';
import { renderPlatformWorkloads } from './platform-workloads.ts';
import { renderTenantManifests } from './tenant-namespace.ts';

/** What a self-hosted cluster receives: the platform chart and, per tenant, the tenant chart. */
function selfHostedManifests(): Record<string, unknown>[] {
  const platform = renderPlatformWorkloads({
    target: 'self-hosted',
    env: 'prod',
    image: 'registry.example.com/agent-platform:1.0.0',
    domain: 'agents.customer.example',
    sizes: loadWorkloadsConfig('prod'),
    dataNetworkCidr: '10.50.0.0/16',
    trustProxy: '1',
    ingressClassName: 'nginx',
    ingressNamespace: 'ingress-nginx',
    tlsSecretName: 'agent-platform-tls',
  });
  const tenant = parseAllDocuments(
    renderTenantManifests({
      tenantId: 'acme',
      tier: TIERS[0]!,
      hostname: 'acme.app.agents.customer.example',
    }),
  ).map((d) => d.toJSON() as Record<string, unknown>);
  return [...platform, ...tenant];
}

const readmeMinimum = () => {
  const match = /\*\*Kubernetes (1\.\d+) or newer\.\*\*/.exec(
    readFileSync(new URL('../README.md', import.meta.url), 'utf8'),
  );
  return match?.[1];
};

test('the README states exactly the self-hosted minimum the manifests need', () => {
  const needed = minimumKubernetes(selfHostedManifests());
  expect(needed?.because.kind).toMatch(/^ValidatingAdmissionPolicy/);
  expect(readmeMinimum()).toBe(needed?.version);
});

test.each([
  [{ apiVersion: 'batch/v1', kind: 'CronJob', spec: { schedule: '* * * * *' } }, undefined],
  [{ apiVersion: 'batch/v1', kind: 'CronJob', spec: { timeZone: 'Etc/UTC' } }, '1.27'],
  [{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', spec: {} }, '1.30'],
  [
    { apiVersion: 'admissionregistration.k8s.io/v1beta1', kind: 'ValidatingAdmissionPolicy', spec: {} },
    undefined,
  ],
])('%j needs %s', (manifest, version) => {
  expect(minimumKubernetes([manifest])?.version).toBe(version);
});

test('the highest floor wins, and names its source', () => {
  const found = minimumKubernetes([
    { apiVersion: 'batch/v1', kind: 'CronJob', spec: { timeZone: 'Etc/UTC' } },
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', spec: {} },
  ]);
  expect(found?.version).toBe('1.30');
  expect(found?.because.source).toMatch(/kubernetes\.io/);
});

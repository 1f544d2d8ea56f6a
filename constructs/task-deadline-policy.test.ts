import { describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { evaluatePolicy, selectorMatches } from '../tenants/kubernetes/testing/admission.ts';
import { TIERS, type Tier } from '../tenants/tiers.ts';
import { validateManifests } from './manifest-validation.ts';
import { renderPlatformWorkloads } from './platform-workloads.ts';
import { MAX_TASK_SECONDS_LABEL, TASK_DEADLINE_POLICY } from './task-deadline-policy.ts';
import { renderTenantManifests } from './tenant-namespace.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are loosely typed JSON
type Manifest = Record<string, any>;

const manifests = renderPlatformWorkloads({
  target: 'self-hosted',
  env: 'prod',
  image: 'registry.example.com/agent-platform:1',
  domain: 'agents.example.com',
  sizes: loadWorkloadsConfig('prod'),
  ingressClassName: 'nginx',
  ingressNamespace: 'ingress-nginx',
  dataNetworkCidr: '10.30.0.0/16',
  tlsSecretName: 'platform-tls',
  trustProxy: '1',
}) as Manifest[];
const named = (kind: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name === TASK_DEADLINE_POLICY)!;
const policy = named('ValidatingAdmissionPolicy');
const binding = named('ValidatingAdmissionPolicyBinding');

/** The namespace the tenant chart renders for a tier: the policy reads its label. */
function tenantNamespace(tier: Tier): Manifest {
  const yaml = renderTenantManifests({ tenantId: 'acme', tier, hostname: 'acme.app.example.com' });
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Manifest)
    .find((m) => m.kind === 'Namespace')!;
}

/** `podDeadline` null: the Pod template carries none. */
const job = (deadline?: number, podDeadline: number | null = deadline ?? null): Manifest => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'task', namespace: 'acme' },
  spec: {
    ...(deadline === undefined ? {} : { activeDeadlineSeconds: deadline }),
    template: {
      spec: {
        ...(podDeadline === null ? {} : { activeDeadlineSeconds: podDeadline }),
        restartPolicy: 'Never',
        containers: [{ name: 'task', image: 'worker:1' }],
      },
    },
  },
});
const pod = (deadline?: number): Manifest => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'task', namespace: 'acme' },
  spec: {
    ...(deadline === undefined ? {} : { activeDeadlineSeconds: deadline }),
    containers: [{ name: 'task', image: 'worker:1' }],
  },
});

describe('task deadline admission policy', () => {
  test('the policy and binding pass the Kubernetes schema and are cluster-scoped', async () => {
    expect(await validateManifests([policy, binding])).toEqual([]);
    expect(policy.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(policy.metadata).toMatchObject({ name: TASK_DEADLINE_POLICY });
    expect(policy.metadata.namespace).toBeUndefined();
    expect(binding.metadata.namespace).toBeUndefined();
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['jobs'] },
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] },
    ]);
  });

  test('the binding denies, in namespaces labelled tenant only', () => {
    expect(binding.spec).toEqual({
      policyName: TASK_DEADLINE_POLICY,
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: { matchExpressions: [{ key: 'tenant', operator: 'Exists' }] } },
    });
    const selector = binding.spec.matchResources.namespaceSelector;
    expect(selectorMatches(selector, tenantNamespace(TIERS[0]!).metadata.labels)).toBe(true);
    expect(selectorMatches(selector, { 'kubernetes.io/metadata.name': 'platform' })).toBe(false);
  });

  test.each(TIERS.map((t) => [t.name, t] as const))(
    '%s: the namespace label is maxTaskMinutes x 60',
    (_, tier) => {
      expect(tenantNamespace(tier).metadata.labels[MAX_TASK_SECONDS_LABEL]).toBe(
        String(tier.maxTaskMinutes * 60),
      );
    },
  );

  describe.each(TIERS.map((t) => [t.name, t] as const))('%s tier, the rendered CEL evaluated', (_, tier) => {
    const max = tier.maxTaskMinutes * 60;
    const ns = tenantNamespace(tier);
    const create = (object: Manifest) =>
      evaluatePolicy(policy, { operation: 'CREATE', object, oldObject: null, namespaceObject: ns });

    test.each([
      ['a Job at the limit', job(max), true],
      ['a Job well inside it', job(60), true],
      ['a Job one second over', job(max + 1), false],
      ['a Job with no deadline', job(undefined), false],
      ['a Job whose Pods carry no deadline', job(max, null), false],
      ['a Job whose Pods may run longer than allowed', job(max, max + 1), false],
      ['a Pod at the limit', pod(max), true],
      ['a Pod one second over', pod(max + 1), false],
      ['a Pod with no deadline', pod(undefined), false],
    ])('%s', (_label, object, allowed) => {
      const verdict = create(object);
      expect(verdict.allowed).toBe(allowed);
      expect(verdict.messages.join('; ')).not.toContain('expression error');
    });

    test('the denial says what the limit is', () => {
      expect(create(pod(undefined)).messages).toEqual([
        `spec.activeDeadlineSeconds must be set and at most ${max} seconds (the tier maxTaskMinutes)`,
      ]);
    });
  });

  test('an update that keeps or lowers the deadline passes after a downgrade; raising it does not', () => {
    const [free, pro] = [TIERS.find((t) => t.name === 'free')!, TIERS.find((t) => t.name === 'pro')!];
    const running = pod(pro.maxTaskMinutes * 60);
    const update = (object: Manifest) =>
      evaluatePolicy(policy, {
        operation: 'UPDATE',
        object,
        oldObject: running,
        namespaceObject: tenantNamespace(free),
      });
    expect(update({ ...running, metadata: { ...running.metadata, labels: { seen: 'yes' } } }).allowed).toBe(
      true,
    );
    expect(update(pod(pro.maxTaskMinutes * 60 - 1)).allowed).toBe(true);
    expect(update(pod(pro.maxTaskMinutes * 60 + 1)).allowed).toBe(false);
  });

  test('a tenant namespace without the limit label refuses everything, and says why', () => {
    const verdict = evaluatePolicy(policy, {
      operation: 'CREATE',
      object: pod(60),
      oldObject: null,
      namespaceObject: { metadata: { name: 'acme', labels: { tenant: 'acme' } } },
    });
    expect(verdict.allowed).toBe(false);
    expect(verdict.messages[0]).toBe(
      `the namespace has no '${MAX_TASK_SECONDS_LABEL}' label: re-apply the tenant chart`,
    );
  });
});

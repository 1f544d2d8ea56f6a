import { describe, expect, test } from 'vitest';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { evaluatePolicy } from '../tenants/kubernetes/testing/admission.ts';
import { validateManifests } from './manifest-validation.ts';
import { CONTROL_PLANE_ROLE, COST_GUARD_ROLE, TENANT_SCOPE_POLICY } from './platform-rbac.ts';
import { renderPlatformWorkloads } from './platform-workloads.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are loosely typed JSON
type Manifest = Record<string, any>;

const manifests = renderPlatformWorkloads({
  target: 'eks',
  env: 'prod',
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent-platform:1',
  domain: 'agents.example.com',
  sizes: loadWorkloadsConfig('prod'),
  dataNetworkCidr: '10.30.0.0/16',
  trustProxy: '10.30.0.0/22',
  loadBalancerSourceCidr: '10.30.0.0/22',
}) as Manifest[];
const find = (kind: string, name: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name === name)!;

const stopWork = [
  {
    apiGroups: [''],
    resources: ['resourcequotas'],
    resourceNames: ['tenant-quota'],
    verbs: ['get', 'patch'],
  },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['patch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'delete'] },
];

describe('platform RBAC', () => {
  test('the cost guard may read and set the tenant quota, annotate namespaces and delete Jobs; nothing else', () => {
    expect(find('ClusterRole', COST_GUARD_ROLE).rules).toEqual(stopWork);
  });

  test('the control plane applies the tenant chart (create and patch per kind) and stops work', () => {
    expect(find('ClusterRole', CONTROL_PLANE_ROLE).rules).toEqual([
      {
        apiGroups: [''],
        resources: ['namespaces', 'resourcequotas', 'limitranges'],
        verbs: ['create', 'patch'],
      },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'patch'] },
      ...stopWork,
    ]);
  });

  test('self-hosted has no cost guard, so no guard role; the control plane and both policies stay', () => {
    const selfHosted = renderPlatformWorkloads({
      target: 'self-hosted',
      env: 'prod',
      image: 'registry.example.com/agent-platform:1',
      domain: 'agents.example.com',
      sizes: loadWorkloadsConfig('prod'),
      dataNetworkCidr: '10.50.0.0/16',
      trustProxy: '1',
      ingressClassName: 'nginx',
      ingressNamespace: 'ingress-nginx',
      tlsSecretName: 'platform-tls',
    }) as Manifest[];
    const names = (kind: string) => selfHosted.filter((m) => m.kind === kind).map((m) => m.metadata.name);
    expect(names('ClusterRole')).toEqual([CONTROL_PLANE_ROLE]);
    expect(names('ValidatingAdmissionPolicy').sort()).toEqual([
      'agent-platform-task-deadline',
      TENANT_SCOPE_POLICY,
    ]);
  });

  test('no rule grants a wildcard, secrets, pods, escalation or list of namespaces', () => {
    const rules = manifests.filter((m) => m.kind === 'ClusterRole').flatMap((r) => r.rules);
    for (const rule of rules) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain('*');
      expect(rule.resources).not.toContain('secrets');
      expect(rule.resources).not.toContain('pods');
      expect(rule.verbs).not.toEqual(expect.arrayContaining(['escalate']));
      expect(rule.verbs).not.toEqual(expect.arrayContaining(['bind']));
    }
  });

  test.each([
    [COST_GUARD_ROLE, 'cost-guard'],
    [CONTROL_PLANE_ROLE, 'control-plane'],
  ])('%s is bound to the %s ServiceAccount of the platform namespace alone', async (role, account) => {
    const binding = find('ClusterRoleBinding', role);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: role,
    });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account, namespace: 'platform' }]);
    expect(binding.metadata.namespace).toBeUndefined();
    expect(await validateManifests([find('ClusterRole', role), binding])).toEqual([]);
  });
});

describe('tenant-scope admission policy (what RBAC cannot say)', () => {
  const policy = find('ValidatingAdmissionPolicy', TENANT_SCOPE_POLICY);
  const guard = 'system:serviceaccount:platform:cost-guard';
  const controlPlane = 'system:serviceaccount:platform:control-plane';
  const ns = (name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels, annotations },
  });
  const acme = ns('acme', { tenant: 'acme', 'agent-platform.io/tier': 'pro' });
  const core = (resource: string) => ({ group: '', version: 'v1', resource });
  const jobs = { group: 'batch', version: 'v1', resource: 'jobs' };
  const job = (namespace: string) => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'task', namespace },
  });

  test('the policy and its binding pass the schema, fail closed and deny', async () => {
    const binding = find('ValidatingAdmissionPolicyBinding', TENANT_SCOPE_POLICY);
    expect(await validateManifests([policy, binding])).toEqual([]);
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(binding.spec).toEqual({ policyName: TENANT_SCOPE_POLICY, validationActions: ['Deny'] });
  });

  test.each([
    [
      'the guard annotates a tenant namespace',
      guard,
      'UPDATE',
      core('namespaces'),
      ns('acme', acme.metadata.labels, { 'agent-platform.io/stop-tasks': 'true' }),
      acme,
      null,
      true,
    ],
    [
      'the guard removes the tenant label',
      guard,
      'UPDATE',
      core('namespaces'),
      ns('acme', { 'agent-platform.io/tier': 'pro' }),
      acme,
      null,
      false,
    ],
    [
      'the guard annotates kube-system',
      guard,
      'UPDATE',
      core('namespaces'),
      ns('kube-system', {}, { x: 'y' }),
      ns('kube-system', {}),
      null,
      false,
    ],
    ['the guard deletes a Job of a tenant', guard, 'DELETE', jobs, null, job('acme'), acme, true],
    [
      'the guard deletes a Job of the platform',
      guard,
      'DELETE',
      jobs,
      null,
      job('platform'),
      ns('platform', {}),
      false,
    ],
    [
      'the control plane creates a tenant namespace',
      controlPlane,
      'CREATE',
      core('namespaces'),
      acme,
      null,
      null,
      true,
    ],
    [
      'the control plane creates a namespace labelled for another tenant',
      controlPlane,
      'CREATE',
      core('namespaces'),
      ns('acme', { tenant: 'other' }),
      null,
      null,
      false,
    ],
    [
      'the control plane creates an unlabelled namespace',
      controlPlane,
      'CREATE',
      core('namespaces'),
      ns('tools', {}),
      null,
      null,
      false,
    ],
    [
      'the control plane applies a quota in kube-system',
      controlPlane,
      'CREATE',
      core('resourcequotas'),
      { kind: 'ResourceQuota', metadata: { name: 'tenant-quota', namespace: 'kube-system' } },
      null,
      ns('kube-system', {}),
      false,
    ],
    [
      'an operator relabels kube-system',
      'alice',
      'UPDATE',
      core('namespaces'),
      ns('kube-system', { team: 'x' }),
      ns('kube-system', {}),
      null,
      true,
    ],
  ])('%s', (_label, username, operation, resource, object, oldObject, namespaceObject, allowed) => {
    const verdict = evaluatePolicy(policy, {
      operation: operation as 'CREATE' | 'UPDATE' | 'DELETE',
      object,
      oldObject,
      namespaceObject,
      username,
      resource,
    });
    expect(verdict).toMatchObject({ allowed });
    // A refusal must come from a validation, not from an expression that failed to evaluate.
    expect(verdict.messages.join('; ')).not.toContain('expression error');
  });
});

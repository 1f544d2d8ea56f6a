import { describe, expect, test } from 'vitest';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { validateManifests } from './manifest-validation.ts';
import { CONTROL_PLANE_ROLE, COST_GUARD_ROLE } from './platform-rbac.ts';
import { renderPlatformWorkloads } from './platform-workloads.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are loosely typed JSON
type Manifest = Record<string, any>;

const manifests = renderPlatformWorkloads({
  target: 'eks',
  env: 'prod',
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent-platform:1',
  domain: 'agents.example.com',
  sizes: loadWorkloadsConfig('prod'),
  ingressClassName: 'alb',
  ingressNamespace: 'kube-system',
  dataNetworkCidr: '10.30.0.0/16',
  certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/abc',
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

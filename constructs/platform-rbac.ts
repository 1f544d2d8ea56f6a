import { KubeClusterRole, KubeClusterRoleBinding, type PolicyRule } from 'cdk8s-plus-28/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { WORKLOAD_IDENTITIES } from '../config/names.ts';
import { TENANT_QUOTA_NAME } from '../tenants/kubernetes/names.ts';

export const COST_GUARD_ROLE = 'agent-platform-cost-guard';
export const CONTROL_PLANE_ROLE = 'agent-platform-control-plane';

/**
 * Stopping and resuming a tenant's work: read and set the quota counts (only the chart's `tenant-quota`, by
 * resourceNames), annotate the namespace, and delete the running Jobs on suspension. RBAC cannot select by
 * label, so the `tenant` label is checked by the client: each patch is a JSON Patch that first tests it.
 */
export const STOP_WORK_RULES: PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['resourcequotas'],
    resourceNames: [TENANT_QUOTA_NAME],
    verbs: ['get', 'patch'],
  },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['patch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'delete'] },
];

/**
 * Server-side apply of the tenant chart (constructs/tenant-namespace.ts): apply is a PATCH, and the API
 * server authorizes it as `create` when the object does not exist yet, so each kind needs both.
 */
export const TENANT_APPLY_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['namespaces', 'resourcequotas', 'limitranges'], verbs: ['create', 'patch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'patch'] },
];

/**
 * The cost guard stops and resumes work; the control plane onboards tenants (its operator API runs the
 * provisioner) and suspends or resumes them from the same API, so it gets both rule sets.
 */
export function addPlatformRbac(scope: Construct, labels: (name: string) => Record<string, string>): void {
  const bind = (id: string, name: string, rules: PolicyRule[], serviceAccount: string, app: string) => {
    new KubeClusterRole(scope, `${id}-role`, { metadata: { name, labels: labels(app) }, rules });
    new KubeClusterRoleBinding(scope, `${id}-binding`, {
      metadata: { name, labels: labels(app) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [
        { kind: 'ServiceAccount', name: serviceAccount, namespace: WORKLOAD_IDENTITIES.costGuard.namespace },
      ],
    });
  };
  bind(
    'cost-guard',
    COST_GUARD_ROLE,
    STOP_WORK_RULES,
    WORKLOAD_IDENTITIES.costGuard.serviceAccount,
    'cost-guard',
  );
  bind(
    'control-plane-tenants',
    CONTROL_PLANE_ROLE,
    [...TENANT_APPLY_RULES, ...STOP_WORK_RULES],
    WORKLOAD_IDENTITIES.controlPlane.serviceAccount,
    'control-plane',
  );
}

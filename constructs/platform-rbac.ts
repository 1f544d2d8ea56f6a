import { ApiObject } from 'cdk8s';
import { KubeClusterRole, KubeClusterRoleBinding, type PolicyRule } from 'cdk8s-plus-28/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { WORKLOAD_IDENTITIES } from '../config/names.ts';
import { TENANT_QUOTA_NAME } from '../tenants/kubernetes/names.ts';

export const COST_GUARD_ROLE = 'agent-platform-cost-guard';
/** Admission policy that keeps the two identities' cluster-wide grants on tenant namespaces. */
export const TENANT_SCOPE_POLICY = 'agent-platform-tenant-scope';
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
 * provisioner) and suspends or resumes them from the same API, so it gets both rule sets. The tenant-scope
 * policy keeps both to tenant namespaces.
 */
export function addPlatformRbac(
  scope: Construct,
  labels: (name: string) => Record<string, string>,
  /** The cost guard runs on EKS only (its billing evidence is Cost Explorer). */
  options: { readonly costGuard: boolean },
): void {
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
  addTenantScopePolicy(scope, labels('platform'));
  if (options.costGuard) {
    bind(
      'cost-guard',
      COST_GUARD_ROLE,
      STOP_WORK_RULES,
      WORKLOAD_IDENTITIES.costGuard.serviceAccount,
      'cost-guard',
    );
  }
  bind(
    'control-plane-tenants',
    CONTROL_PLANE_ROLE,
    [...TENANT_APPLY_RULES, ...STOP_WORK_RULES],
    WORKLOAD_IDENTITIES.controlPlane.serviceAccount,
    'control-plane',
  );
}

const user = (account: string) =>
  `system:serviceaccount:${WORKLOAD_IDENTITIES.costGuard.namespace}:${account}`;

/**
 * RBAC grants these verbs on every namespace; this ValidatingAdmissionPolicy narrows them to tenants. For
 * requests by the cost guard or the control plane: namespaced objects must sit in a namespace labelled
 * `tenant`; a namespace the control plane writes must carry `tenant=<its name>`; the cost guard may not
 * change a namespace's labels, nor touch one without the `tenant` label.
 */
export const TENANT_SCOPE_VALIDATIONS = [
  {
    expression:
      "request.resource.resource == 'namespaces' || (has(namespaceObject.metadata.labels) && 'tenant' in namespaceObject.metadata.labels)",
    message: 'the platform may change objects only in namespaces labelled tenant',
  },
  {
    expression:
      "request.resource.resource != 'namespaces' || variables.guard || (has(object.metadata.labels) && 'tenant' in object.metadata.labels && object.metadata.labels['tenant'] == object.metadata.name)",
    message: 'a namespace the control plane writes must be labelled tenant=<its name>',
  },
  {
    expression:
      "request.resource.resource != 'namespaces' || !variables.guard || (has(oldObject.metadata.labels) && 'tenant' in oldObject.metadata.labels && has(object.metadata.labels) && object.metadata.labels == oldObject.metadata.labels)",
    message: 'the cost guard may annotate tenant namespaces only, and never change their labels',
  },
] as const;

function addTenantScopePolicy(scope: Construct, labels: Record<string, string>): void {
  const rule = (apiGroups: string[], resources: string[], operations: string[]) => ({
    apiGroups,
    apiVersions: ['v1'],
    operations,
    resources,
  });
  const write = ['CREATE', 'UPDATE'];
  new ApiObject(scope, 'tenant-scope-policy', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: TENANT_SCOPE_POLICY, labels },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          rule([''], ['namespaces', 'resourcequotas', 'limitranges'], write),
          rule(['networking.k8s.io'], ['networkpolicies'], write),
          rule(['batch'], ['jobs'], ['DELETE']),
        ],
      },
      matchConditions: [
        {
          name: 'platform-identities',
          expression: `request.userInfo.username in ['${user(WORKLOAD_IDENTITIES.costGuard.serviceAccount)}', '${user(WORKLOAD_IDENTITIES.controlPlane.serviceAccount)}']`,
        },
      ],
      variables: [
        {
          name: 'guard',
          expression: `request.userInfo.username == '${user(WORKLOAD_IDENTITIES.costGuard.serviceAccount)}'`,
        },
      ],
      validations: TENANT_SCOPE_VALIDATIONS.map((v) => ({ ...v })),
    },
  });
  new ApiObject(scope, 'tenant-scope-binding', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: TENANT_SCOPE_POLICY, labels },
    spec: { policyName: TENANT_SCOPE_POLICY, validationActions: ['Deny'] },
  });
}

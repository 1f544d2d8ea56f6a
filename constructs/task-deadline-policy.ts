import { ApiObject } from 'cdk8s';
import type { Construct } from 'constructs';
import type { Tier } from '../tenants/tiers.ts';

/**
 * Namespace label carrying the tier's longest task in seconds. The tenant chart writes it from the tier, and
 * one cluster-wide policy reads it through `namespaceObject`, so every tier is served without a param object.
 */
export const MAX_TASK_SECONDS_LABEL = 'agent-platform.io/max-task-seconds';
export const TASK_DEADLINE_POLICY = 'agent-platform-task-deadline';

/** The deadline a tenant's Jobs and Pods may carry at most: the tier's maxTaskMinutes in seconds. */
export function maxTaskSeconds(tier: Tier): number {
  return tier.maxTaskMinutes * 60;
}

const LIMIT = `namespaceObject.metadata.labels['${MAX_TASK_SECONDS_LABEL}']`;

/**
 * The policy's CEL, in evaluation order. An update that keeps or lowers an existing deadline always passes:
 * controllers update running objects (finalizers, labels) and must not be blocked after a tier downgrade.
 */
export const TASK_DEADLINE_VARIABLES = [
  {
    name: 'maxSeconds',
    expression: `'${MAX_TASK_SECONDS_LABEL}' in namespaceObject.metadata.labels ? int(${LIMIT}) : 0`,
  },
  {
    name: 'deadlineKept',
    expression:
      "request.operation == 'UPDATE' && has(oldObject.spec.activeDeadlineSeconds) && " +
      'has(object.spec.activeDeadlineSeconds) && ' +
      'object.spec.activeDeadlineSeconds <= oldObject.spec.activeDeadlineSeconds',
  },
] as const;

const within = (field: string) =>
  `variables.deadlineKept || (has(${field}) && ${field} <= variables.maxSeconds)`;

export const TASK_DEADLINE_VALIDATIONS = [
  {
    expression: 'variables.maxSeconds > 0',
    message: `the namespace has no '${MAX_TASK_SECONDS_LABEL}' label: re-apply the tenant chart`,
  },
  {
    expression: within('object.spec.activeDeadlineSeconds'),
    messageExpression:
      "'spec.activeDeadlineSeconds must be set and at most ' + string(variables.maxSeconds) + " +
      "' seconds (the tier maxTaskMinutes)'",
  },
  {
    // A Job's deadline is on the Job; its Pods need their own, or the Job is admitted and every Pod refused.
    expression: `object.kind != 'Job' || ${within('object.spec.template.spec.activeDeadlineSeconds')}`,
    messageExpression:
      "'spec.template.spec.activeDeadlineSeconds must be set and at most ' + string(variables.maxSeconds) + " +
      "' seconds, so the Job can start its Pods'",
  },
] as const;

/**
 * ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, stable since Kubernetes 1.30) and its binding:
 * Jobs and Pods in namespaces labelled `tenant` must carry `activeDeadlineSeconds` no longer than the tier allows.
 */
export function addTaskDeadlinePolicy(scope: Construct, labels: Record<string, string>): void {
  const operations = ['CREATE', 'UPDATE'];
  new ApiObject(scope, 'task-deadline-policy', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: TASK_DEADLINE_POLICY, labels },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          { apiGroups: ['batch'], apiVersions: ['v1'], operations, resources: ['jobs'] },
          { apiGroups: [''], apiVersions: ['v1'], operations, resources: ['pods'] },
        ],
      },
      variables: TASK_DEADLINE_VARIABLES.map((v) => ({ ...v })),
      validations: TASK_DEADLINE_VALIDATIONS.map((v) => ({ ...v })),
    },
  });
  new ApiObject(scope, 'task-deadline-binding', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: TASK_DEADLINE_POLICY, labels },
    spec: {
      policyName: TASK_DEADLINE_POLICY,
      validationActions: ['Deny'],
      matchResources: {
        namespaceSelector: { matchExpressions: [{ key: 'tenant', operator: 'Exists' }] },
      },
    },
  });
}

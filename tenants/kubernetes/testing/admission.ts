import { evaluate } from '@marcbachmann/cel-js';

/**
 * Evaluates ValidatingAdmissionPolicy CEL the way the API server does for the parts our policies use:
 * variables in order under `variables`, then each validation; integers become CEL ints (the API server types
 * them from the OpenAPI schema). Page followed: kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
 */

// biome-ignore lint/suspicious/noExplicitAny: admission objects are arbitrary JSON
type Json = any;

export interface AdmissionRequest {
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE';
  readonly object: Json | null;
  readonly oldObject: Json | null;
  readonly namespaceObject: Json | null;
  /** e.g. `system:serviceaccount:platform:cost-guard`. @default 'admin' */
  readonly username?: string;
  /** The resource requested, e.g. `{ group: 'batch', version: 'v1', resource: 'jobs' }`. @default none */
  readonly resource?: { readonly group: string; readonly version: string; readonly resource: string };
}

export interface PolicyVerdict {
  readonly allowed: boolean;
  /** Messages of the validations that failed (or of the CEL errors, failurePolicy Fail). */
  readonly messages: string[];
}

/** JSON numbers that are whole become bigint, as CEL `int`. */
function toCel(value: Json): Json {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  return value;
}

/** Runs one policy's variables and validations against a request. */
export function evaluatePolicy(policy: Json, request: AdmissionRequest): PolicyVerdict {
  const spec = policy.spec;
  const activation: Record<string, Json> = {
    object: toCel(request.object),
    oldObject: toCel(request.oldObject),
    namespaceObject: toCel(request.namespaceObject),
    request: toCel({
      operation: request.operation,
      userInfo: { username: request.username ?? 'admin' },
      resource: request.resource ?? {},
    }),
    variables: {},
  };
  const messages: string[] = [];
  try {
    for (const condition of spec.matchConditions ?? []) {
      if (evaluate(condition.expression, activation) !== true) return { allowed: true, messages };
    }
    for (const variable of spec.variables ?? []) {
      activation.variables = {
        ...activation.variables,
        [variable.name]: evaluate(variable.expression, activation),
      };
    }
    for (const validation of spec.validations ?? []) {
      if (evaluate(validation.expression, activation) === true) continue;
      messages.push(
        validation.messageExpression
          ? String(evaluate(validation.messageExpression, activation))
          : (validation.message ?? `failed expression: ${validation.expression}`),
      );
    }
  } catch (error) {
    if (spec.failurePolicy === 'Ignore') return { allowed: true, messages: [] };
    messages.push(`expression error: ${error instanceof Error ? error.message.split('\n')[0] : error}`);
  }
  return { allowed: messages.length === 0, messages };
}

interface Rule {
  apiGroups: string[];
  apiVersions: string[];
  operations: string[];
  resources: string[];
}

/** True when the policy's resourceRules cover the group/version/resource and operation. */
export function policyMatches(
  policy: Json,
  gvr: { group: string; version: string; resource: string },
  op: string,
) {
  const rules: Rule[] = policy.spec.matchConstraints?.resourceRules ?? [];
  const has = (list: string[], v: string) => list.includes('*') || list.includes(v);
  return rules.some(
    (r) =>
      has(r.apiGroups, gvr.group) &&
      has(r.apiVersions, gvr.version) &&
      has(r.resources, gvr.resource) &&
      has(r.operations, op),
  );
}

/** A label selector (matchLabels and matchExpressions) against a set of labels. */
export function selectorMatches(selector: Json | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const present = e.key in labels;
    const ok =
      e.operator === 'Exists'
        ? present
        : e.operator === 'DoesNotExist'
          ? !present
          : e.operator === 'In'
            ? present && e.values.includes(labels[e.key])
            : !present || !e.values.includes(labels[e.key]);
    if (!ok) return false;
  }
  return true;
}

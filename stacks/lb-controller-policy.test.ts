import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect, test } from 'vitest';
import { LB_CONTROLLER, lbControllerPolicyJson } from './lb-controller-policy.ts';

/** aws-cdk-lib's copy of the controller's published iam_policy.json for the same release. */
function publishedPolicy(): { Statement: Record<string, unknown>[] } {
  const root = path.dirname(createRequire(import.meta.url).resolve('aws-cdk-lib/package.json'));
  const file = path.join(root, 'aws-eks-v2', 'lib', 'addons', `alb-iam_policy-${LB_CONTROLLER.version}.json`);
  return JSON.parse(readFileSync(file, 'utf8'));
}

const asList = (v: unknown) => (Array.isArray(v) ? v : [v]);

test('the controller policy is the one published for the pinned release, statement by statement', () => {
  const published = publishedPolicy().Statement.map((s) => ({
    Effect: s.Effect,
    Action: asList(s.Action),
    Resource: asList(s.Resource),
    ...(s.Condition ? { Condition: s.Condition } : {}),
  }));
  expect(lbControllerPolicyJson('aws')).toEqual(published);
});

test('the partition is filled into every ARN', () => {
  const resources = lbControllerPolicyJson('aws-cn').flatMap((s) => s.Resource as string[]);
  expect(resources.filter((r) => r !== '*').every((r) => r.startsWith('arn:aws-cn:'))).toBe(true);
  expect(resources.join()).not.toContain('<partition>');
});

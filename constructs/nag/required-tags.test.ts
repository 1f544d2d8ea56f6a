import { App, Stack, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { NagRuleCompliance } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { requiredTags } from './required-tags.ts';

/** The queue's CfnResource once tags have been applied (aspects run during synth). */
function queueWith(tags: Record<string, string>) {
  const app = new App();
  const stack = new Stack(app, 'Test');
  const queue = new sqs.Queue(stack, 'Queue');
  for (const [key, value] of Object.entries(tags)) Tags.of(stack).add(key, value);
  app.synth();
  return queue.node.defaultChild as sqs.CfnQueue;
}

describe('requiredTags', () => {
  test('is compliant when env, app and cost-center are all present', () => {
    expect(requiredTags(queueWith({ env: 'dev', app: 'agent-platform', 'cost-center': 'platform' }))).toBe(
      NagRuleCompliance.COMPLIANT,
    );
  });

  test('reports each missing tag as its own finding', () => {
    expect(requiredTags(queueWith({ env: 'dev' }))).toEqual(['missing-tag-app', 'missing-tag-cost-center']);
  });

  test('treats an empty value as missing', () => {
    expect(requiredTags(queueWith({ env: '', app: 'agent-platform', 'cost-center': 'x' }))).toEqual([
      'missing-tag-env',
    ]);
  });

  test('does not apply to resources that cannot carry tags', () => {
    const stack = new Stack(new App(), 'Test');
    const alarm = new cloudwatch.Alarm(stack, 'Alarm', {
      metric: new cloudwatch.Metric({ namespace: 'N', metricName: 'M' }),
      threshold: 1,
      evaluationPeriods: 1,
    });
    const policy = new sqs.QueuePolicy(stack, 'Policy', { queues: [new sqs.Queue(stack, 'Q')] });
    expect(requiredTags(policy.node.defaultChild as sqs.CfnQueuePolicy)).toBe(
      NagRuleCompliance.NOT_APPLICABLE,
    );
    expect(requiredTags(alarm.node.defaultChild as cloudwatch.CfnAlarm)).not.toBe(
      NagRuleCompliance.NOT_APPLICABLE,
    );
  });

  test('does not apply to types CloudFormation refuses to tag', () => {
    const stack = new Stack(new App(), 'Test');
    const dashboard = new cloudwatch.Dashboard(stack, 'Dashboard');
    expect(requiredTags(dashboard.node.defaultChild as cloudwatch.CfnDashboard)).toBe(
      NagRuleCompliance.NOT_APPLICABLE,
    );
  });
});

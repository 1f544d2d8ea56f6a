import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, test } from 'vitest';
import { createEksAlarms } from './eks-alarms.ts';
import { createRdsAlarms } from './rds-alarms.ts';
import { alarmDescription, runbookPath } from './runbooks.ts';

function factoryProps() {
  const stack = new Stack(new App(), 'Test');
  const topic = new sns.Topic(stack, 'Topic');
  return { stack, props: { namePrefix: 'p', action: new cloudwatchActions.SnsAction(topic) } };
}

test('an alarm description ends with its runbook path', () => {
  expect(alarmDescription('Disk low.', 'rds-storage.md')).toBe('Disk low. Runbook: runbooks/rds-storage.md');
  expect(runbookPath('cache-failover.md')).toBe('runbooks/cache-failover.md');
});

describe('createEksAlarms', () => {
  test.each([
    [0, ['p-eks-failed-nodes']],
    [3, ['p-eks-failed-nodes', 'p-eks-node-count']],
  ])('with a minimum of %i nodes creates %j', (minimumNodes, names) => {
    const { stack, props } = factoryProps();
    const alarms = createEksAlarms(stack, { ...props, clusterName: 'c', minimumNodes });
    expect(alarms.map((a) => (a.node.defaultChild as cloudwatch.CfnAlarm).alarmName)).toEqual(names);
  });

  test('treats a silent node count as breaching', () => {
    const { stack, props } = factoryProps();
    createEksAlarms(stack, { ...props, clusterName: 'c', minimumNodes: 2 });
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'p-eks-node-count',
      Threshold: 2,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
  });
});

test('the connection threshold can be set per instance', () => {
  const { stack, props } = factoryProps();
  createRdsAlarms(stack, {
    ...props,
    instanceIdentifier: 'db',
    allocatedStorageGiB: 100,
    connectionThreshold: 900,
  });
  Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
    AlarmName: 'p-rds-connections',
    Threshold: 900,
    AlarmDescription: 'RDS db connections above 900. Runbook: runbooks/rds-performance.md',
  });
});

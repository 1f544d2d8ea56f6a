import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

describe.each(ENVIRONMENT_NAMES)('cost stack in %s', (env) => {
  const config = fixtureConfig(env);
  const cost = () => templateOf(synth[env], 'Cost');
  const topic = { 'Fn::ImportValue': Match.stringLikeRegexp('AlarmTopic') };

  test('budgets the account monthly at the configured limit', () => {
    cost().hasResourceProperties('AWS::Budgets::Budget', {
      Budget: Match.objectLike({
        BudgetType: 'COST',
        TimeUnit: 'MONTHLY',
        BudgetLimit: { Amount: config.budget.monthlyLimitUsd, Unit: 'USD' },
      }),
    });
  });

  test('notifies actual spend at 90, 100 and 200% and forecast at 100%, to the alarm topic and by e-mail', () => {
    const budget = Object.values(cost().findResources('AWS::Budgets::Budget'))[0]!;
    const notifications = budget.Properties.NotificationsWithSubscribers as {
      Notification: { NotificationType: string; Threshold: number; ThresholdType: string };
      Subscribers: { SubscriptionType: string; Address: unknown }[];
    }[];
    expect(
      notifications.map((n) => `${n.Notification.NotificationType}:${n.Notification.Threshold}`),
    ).toEqual(['ACTUAL:90', 'ACTUAL:100', 'ACTUAL:200', 'FORECASTED:100']);
    for (const n of notifications) {
      expect(n.Notification.ThresholdType).toBe('PERCENTAGE');
      expect(n.Subscribers.map((s) => s.SubscriptionType).sort()).toEqual(['EMAIL', 'SNS']);
      expect(n.Subscribers.find((s) => s.SubscriptionType === 'EMAIL')!.Address).toBe(config.alertEmail);
    }
  });

  test('watches the env cost-allocation tag with a CUSTOM anomaly monitor', () => {
    const monitor = Object.values(cost().findResources('AWS::CE::AnomalyMonitor'))[0]!;
    expect(monitor.Properties.MonitorType).toBe('CUSTOM');
    expect(monitor.Properties.MonitorDimension).toBeUndefined();
    expect(JSON.parse(monitor.Properties.MonitorSpecification)).toEqual({
      Tags: { Key: 'env', Values: [env], MatchOptions: ['EQUALS'] },
    });
  });

  test('sends anomalies to the alarm topic immediately', () => {
    cost().hasResourceProperties('AWS::CE::AnomalySubscription', {
      Frequency: 'IMMEDIATE',
      Subscribers: [{ Type: 'SNS', Address: topic }],
      ThresholdExpression: Match.stringLikeRegexp('ANOMALY_TOTAL_IMPACT_ABSOLUTE'),
    });
  });
});

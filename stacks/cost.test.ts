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
  const topic = `arn:aws:sns:${config.region}:${config.account}:agent-platform-${env}-alarms`;

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

  const monitors = () => Object.entries(cost().findResources('AWS::CE::AnomalyMonitor'));

  test('watches each tenant on its own with a DIMENSIONAL monitor on the tenant tag', () => {
    const [, tenant] = monitors().find(([id]) => id.startsWith('TenantAnomalyMonitor'))!;
    expect(tenant.Properties.MonitorType).toBe('DIMENSIONAL');
    expect(tenant.Properties.MonitorDimension).toBe('TAG');
    expect(JSON.parse(tenant.Properties.MonitorSpecification)).toEqual({ Tags: { Key: 'tenant' } });
  });

  test('keeps a CUSTOM monitor on the env tag for shared cost that carries no tenant', () => {
    const [, environment] = monitors().find(([id]) => id.startsWith('AnomalyMonitor'))!;
    expect(environment.Properties.MonitorType).toBe('CUSTOM');
    expect(environment.Properties.MonitorDimension).toBeUndefined();
    expect(JSON.parse(environment.Properties.MonitorSpecification)).toEqual({
      Tags: { Key: 'env', Values: [env], MatchOptions: ['EQUALS'] },
    });
    expect(monitors()).toHaveLength(2);
  });

  test("sends both monitors' anomalies to the alarm topic immediately, found by name rather than an export", () => {
    const subscription = Object.values(cost().findResources('AWS::CE::AnomalySubscription'))[0]!;
    expect(subscription.Properties.Frequency).toBe('IMMEDIATE');
    expect(subscription.Properties.Subscribers).toEqual([{ Type: 'SNS', Address: topic }]);
    expect(subscription.Properties.ThresholdExpression).toMatch(/ANOMALY_TOTAL_IMPACT_ABSOLUTE/);
    expect(subscription.Properties.MonitorArnList).toHaveLength(2);
    expect(JSON.stringify(cost().toJSON())).not.toContain('Fn::ImportValue');
  });
});

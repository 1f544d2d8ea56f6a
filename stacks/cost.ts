import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as ce from 'aws-cdk-lib/aws-ce';
import type { Construct } from 'constructs';
import { alarmTopicArn } from '../config/environments.ts';
import { resourcePrefix } from '../config/names.ts';
import { PlatformStack, type PlatformStackProps } from './platform-stack.ts';

/** Percent-of-budget thresholds on actual spend; 200% matches the cost guard's suspension level. */
export const ACTUAL_THRESHOLDS = [90, 100, 200] as const;
/** Forecasted spend threshold, percent of budget. */
export const FORECAST_THRESHOLD = 100;
/** Anomalies with at least this impact (USD) are notified. */
export const ANOMALY_IMPACT_USD = 100;

/** Account budget and cost anomaly detection. They warn; they never suspend anything (DESIGN.md). */
export class CostStack extends PlatformStack {
  readonly budget: budgets.CfnBudget;
  /** Environment-wide spend, shared cost included. */
  readonly anomalyMonitor: ce.CfnAnomalyMonitor;
  /** Each tenant's spend on its own. */
  readonly tenantAnomalyMonitor: ce.CfnAnomalyMonitor;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, props);
    const { config } = this;
    // The observability stack's topic, by its fixed name (its policy lets Budgets and anomaly detection publish).
    const topicArn = alarmTopicArn(config);
    const subscribers = [
      { subscriptionType: 'SNS', address: topicArn },
      { subscriptionType: 'EMAIL', address: config.alertEmail },
    ];
    const notification = (notificationType: 'ACTUAL' | 'FORECASTED', threshold: number) => ({
      notification: {
        notificationType,
        comparisonOperator: 'GREATER_THAN',
        threshold,
        thresholdType: 'PERCENTAGE',
      },
      subscribers,
    });

    this.budget = new budgets.CfnBudget(this, 'AccountBudget', {
      budget: {
        budgetName: `${resourcePrefix(config)}-account`,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: config.budget.monthlyLimitUsd, unit: 'USD' },
      },
      notificationsWithSubscribers: [
        ...ACTUAL_THRESHOLDS.map((t) => notification('ACTUAL', t)),
        notification('FORECASTED', FORECAST_THRESHOLD),
      ],
    });

    // Per tenant: a DIMENSIONAL monitor on the `tenant` cost-allocation tag evaluates each tag value on its
    // own (up to the top 5,000 values), so one tenant's spike is not averaged away by the others.
    this.tenantAnomalyMonitor = new ce.CfnAnomalyMonitor(this, 'TenantAnomalyMonitor', {
      monitorName: `${resourcePrefix(config)}-tenant-spend`,
      monitorType: 'DIMENSIONAL',
      monitorDimension: 'TAG',
      monitorSpecification: JSON.stringify({ Tags: { Key: 'tenant' } }),
    });
    // Kept: shared cost (the RDS instance, NAT, the cluster's own nodes) carries `env` but no `tenant`, so only
    // this monitor sees a spike there.
    this.anomalyMonitor = new ce.CfnAnomalyMonitor(this, 'AnomalyMonitor', {
      monitorName: `${resourcePrefix(config)}-spend`,
      monitorType: 'CUSTOM',
      monitorSpecification: JSON.stringify({
        Tags: { Key: 'env', Values: [config.name], MatchOptions: ['EQUALS'] },
      }),
    });

    new ce.CfnAnomalySubscription(this, 'AnomalySubscription', {
      subscriptionName: `${resourcePrefix(config)}-anomalies`,
      monitorArnList: [this.tenantAnomalyMonitor.attrMonitorArn, this.anomalyMonitor.attrMonitorArn],
      // SNS subscribers require IMMEDIATE delivery.
      frequency: 'IMMEDIATE',
      subscribers: [{ type: 'SNS', address: topicArn }],
      thresholdExpression: JSON.stringify({
        Dimensions: {
          Key: 'ANOMALY_TOTAL_IMPACT_ABSOLUTE',
          MatchOptions: ['GREATER_THAN_OR_EQUAL'],
          Values: [String(ANOMALY_IMPACT_USD)],
        },
      }),
    });
  }
}

import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as ce from 'aws-cdk-lib/aws-ce';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { resourcePrefix } from '../config/names.ts';
import { PlatformStack, type PlatformStackProps } from './platform-stack.ts';

export interface CostStackProps extends PlatformStackProps {
  /** The alarm topic (its policy already lets budgets and cost anomaly detection publish). */
  readonly topic: sns.ITopic;
}

/** Percent-of-budget thresholds on actual spend; 200% matches the cost guard's suspension level. */
export const ACTUAL_THRESHOLDS = [90, 100, 200] as const;
/** Forecasted spend threshold, percent of budget. */
export const FORECAST_THRESHOLD = 100;
/** Anomalies with at least this impact (USD) are notified. */
export const ANOMALY_IMPACT_USD = 100;

/** Account budget and cost anomaly detection. They warn; they never suspend anything (DESIGN.md). */
export class CostStack extends PlatformStack {
  readonly budget: budgets.CfnBudget;
  readonly anomalyMonitor: ce.CfnAnomalyMonitor;

  constructor(scope: Construct, id: string, props: CostStackProps) {
    super(scope, id, props);
    const { config } = this;
    const subscribers = [
      { subscriptionType: 'SNS', address: props.topic.topicArn },
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

    // DIMENSIONAL monitors only take MonitorDimension SERVICE (one per account); a monitor on a cost-allocation
    // tag is a CUSTOM monitor whose MonitorSpecification is a Cost Explorer expression with a single `Tags`
    // clause. It watches this environment's spend in aggregate; per-tenant spend is the cost guard's job.
    // The `env` tag must be activated as a cost-allocation tag in Billing, or the monitor sees no cost.
    this.anomalyMonitor = new ce.CfnAnomalyMonitor(this, 'AnomalyMonitor', {
      monitorName: `${resourcePrefix(config)}-spend`,
      monitorType: 'CUSTOM',
      monitorSpecification: JSON.stringify({
        Tags: { Key: 'env', Values: [config.name], MatchOptions: ['EQUALS'] },
      }),
    });

    new ce.CfnAnomalySubscription(this, 'AnomalySubscription', {
      subscriptionName: `${resourcePrefix(config)}-anomalies`,
      monitorArnList: [this.anomalyMonitor.attrMonitorArn],
      // SNS subscribers require IMMEDIATE delivery.
      frequency: 'IMMEDIATE',
      subscribers: [{ type: 'SNS', address: props.topic.topicArn }],
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

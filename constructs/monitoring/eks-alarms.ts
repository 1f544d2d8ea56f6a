import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { ALARM_PERIOD, type AlarmFactoryProps, createAlarm } from './alarm.ts';
import { RUNBOOKS } from './runbooks.ts';

export interface EksAlarmProps extends AlarmFactoryProps {
  readonly clusterName: string;
  /** Sum of the node groups' minimum sizes; fewer Ready nodes than this is an outage of capacity. */
  readonly minimumNodes: number;
}

function insightsMetric(metricName: string, clusterName: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'ContainerInsights',
    metricName,
    dimensionsMap: { ClusterName: clusterName },
    statistic: 'Maximum',
    period: ALARM_PERIOD,
  });
}

/** Node health from Container Insights: failed nodes, and fewer nodes than the groups' minimum. */
export function createEksAlarms(scope: Construct, props: EksAlarmProps): cloudwatch.Alarm[] {
  const alarms = [
    createAlarm(scope, props, {
      id: 'eks-failed-nodes',
      metric: insightsMetric('cluster_failed_node_count', props.clusterName),
      threshold: 0,
      comparison: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
      summary: `EKS ${props.clusterName} has failed nodes for 10 minutes.`,
      runbook: RUNBOOKS.eksNodeGroupReplacement,
    }),
  ];
  if (props.minimumNodes > 0) {
    alarms.push(
      createAlarm(scope, props, {
        id: 'eks-node-count',
        metric: insightsMetric('cluster_node_count', props.clusterName),
        threshold: props.minimumNodes,
        comparison: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        // No data means the agent or every node is gone; both need a human.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        summary: `EKS ${props.clusterName} has fewer than ${props.minimumNodes} nodes for 10 minutes.`,
        runbook: RUNBOOKS.eksNodeGroupReplacement,
      }),
    );
  }
  return alarms;
}

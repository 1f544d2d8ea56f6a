import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { ALARM_PERIOD, type AlarmFactoryProps, createAlarm } from './alarm.ts';
import { RUNBOOKS } from './runbooks.ts';

export interface CacheAlarmProps extends AlarmFactoryProps {
  /** Member cluster ids of the replication group (`<group>-001`...). */
  readonly nodeIds: readonly string[];
}

/** The worst node: roles move on failover, so alarms watch the maximum over every member. */
function worstNode(metricName: string, nodeIds: readonly string[], statistic: string): cloudwatch.IMetric {
  const usingMetrics: Record<string, cloudwatch.IMetric> = {};
  for (const [i, node] of nodeIds.entries()) {
    usingMetrics[`n${i}`] = new cloudwatch.Metric({
      namespace: 'AWS/ElastiCache',
      metricName,
      dimensionsMap: { CacheClusterId: node },
      statistic,
      period: ALARM_PERIOD,
    });
  }
  return new cloudwatch.MathExpression({
    expression: `MAX([${Object.keys(usingMetrics).join(', ')}])`,
    usingMetrics,
    label: `${metricName} (worst node)`,
    period: ALARM_PERIOD,
  });
}

/** Engine CPU, memory, evictions and replication lag of one replication group. */
export function createCacheAlarms(scope: Construct, props: CacheAlarmProps): cloudwatch.Alarm[] {
  const above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
  return [
    createAlarm(scope, props, {
      id: 'cache-cpu',
      metric: worstNode('EngineCPUUtilization', props.nodeIds, 'Average'),
      threshold: 80,
      comparison: above,
      summary: 'Redis engine CPU above 80% on a node for 15 minutes.',
      runbook: RUNBOOKS.cachePerformance,
    }),
    createAlarm(scope, props, {
      id: 'cache-memory',
      metric: worstNode('DatabaseMemoryUsagePercentage', props.nodeIds, 'Average'),
      threshold: 85,
      comparison: above,
      summary: 'Redis memory above 85% on a node for 15 minutes.',
      runbook: RUNBOOKS.cachePerformance,
    }),
    createAlarm(scope, props, {
      id: 'cache-evictions',
      metric: worstNode('Evictions', props.nodeIds, 'Sum'),
      threshold: 100,
      comparison: above,
      summary: 'Redis evicting more than 100 keys per 5 minutes: rate-limit state is being lost.',
      runbook: RUNBOOKS.cachePerformance,
    }),
    createAlarm(scope, props, {
      id: 'cache-replication-lag',
      metric: worstNode('ReplicationLag', props.nodeIds, 'Maximum'),
      threshold: 5,
      comparison: above,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      summary: 'A Redis replica more than 5 s behind the primary for 15 minutes.',
      runbook: RUNBOOKS.cacheFailover,
    }),
  ];
}

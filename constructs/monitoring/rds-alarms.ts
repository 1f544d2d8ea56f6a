import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { ALARM_PERIOD, type AlarmFactoryProps, createAlarm } from './alarm.ts';
import { RUNBOOKS } from './runbooks.ts';

export interface RdsAlarmProps extends AlarmFactoryProps {
  /** DBInstanceIdentifier of the instance to watch. */
  readonly instanceIdentifier: string;
  /** Initial allocated storage; the free-storage alarm fires below 10% of it. */
  readonly allocatedStorageGiB: number;
  /**
   * Connections above which to alarm.
   * @default 400 - under max_connections of the smallest class in use (t4g.medium, about 450)
   */
  readonly connectionThreshold?: number;
}

const GiB = 1024 ** 3;

function rdsMetric(metricName: string, instanceIdentifier: string, statistic = 'Average'): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/RDS',
    metricName,
    dimensionsMap: { DBInstanceIdentifier: instanceIdentifier },
    statistic,
    period: ALARM_PERIOD,
  });
}

/** CPU, free storage, freeable memory, connections and replication-slot lag of one PostgreSQL instance. */
export function createRdsAlarms(scope: Construct, props: RdsAlarmProps): cloudwatch.Alarm[] {
  const id = props.instanceIdentifier;
  const above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
  const below = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD;
  return [
    createAlarm(scope, props, {
      id: 'rds-cpu',
      metric: rdsMetric('CPUUtilization', id),
      threshold: 80,
      comparison: above,
      summary: `RDS ${id} CPU above 80% for 15 minutes.`,
      runbook: RUNBOOKS.rdsPerformance,
    }),
    createAlarm(scope, props, {
      id: 'rds-free-storage',
      metric: rdsMetric('FreeStorageSpace', id, 'Minimum'),
      threshold: Math.round(props.allocatedStorageGiB * 0.1 * GiB),
      comparison: below,
      evaluationPeriods: 1,
      summary: `RDS ${id} free storage below 10% of ${props.allocatedStorageGiB} GiB.`,
      runbook: RUNBOOKS.rdsStorage,
    }),
    createAlarm(scope, props, {
      id: 'rds-freeable-memory',
      metric: rdsMetric('FreeableMemory', id, 'Minimum'),
      threshold: 256 * 1024 ** 2,
      comparison: below,
      summary: `RDS ${id} freeable memory below 256 MiB for 15 minutes.`,
      runbook: RUNBOOKS.rdsPerformance,
    }),
    createAlarm(scope, props, {
      id: 'rds-connections',
      metric: rdsMetric('DatabaseConnections', id, 'Maximum'),
      threshold: props.connectionThreshold ?? 400,
      comparison: above,
      summary: `RDS ${id} connections above ${props.connectionThreshold ?? 400}.`,
      runbook: RUNBOOKS.rdsPerformance,
    }),
    // A Multi-AZ instance replicates to its standby synchronously at the storage layer and publishes no
    // ReplicaLag; the PostgreSQL lag it does publish is the oldest replication slot's, in bytes of WAL.
    createAlarm(scope, props, {
      id: 'rds-replica-lag',
      metric: rdsMetric('OldestReplicationSlotLag', id, 'Maximum'),
      threshold: GiB,
      comparison: above,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      summary: `RDS ${id} oldest replication slot more than 1 GiB of WAL behind.`,
      runbook: RUNBOOKS.rdsFailover,
    }),
  ];
}

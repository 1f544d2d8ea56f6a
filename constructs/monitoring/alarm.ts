import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { alarmDescription, type Runbook } from './runbooks.ts';

/** What every alarm factory needs from its caller. */
export interface AlarmFactoryProps {
  /** Prefix of alarm names, e.g. `agent-platform-prod`. */
  readonly namePrefix: string;
  /** Where alarms and their recovery notify (the SNS alarm topic). */
  readonly action: cloudwatch.IAlarmAction;
}

/** One alarm as the factories describe it. */
export interface AlarmSpec {
  /** Short id, also the alarm name suffix, e.g. `rds-cpu`. */
  readonly id: string;
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly comparison: cloudwatch.ComparisonOperator;
  readonly summary: string;
  readonly runbook: Runbook;
  /** @default 3 */
  readonly evaluationPeriods?: number;
  /** @default cloudwatch.TreatMissingData.MISSING */
  readonly treatMissingData?: cloudwatch.TreatMissingData;
}

/** Creates the alarm, links its runbook and wires alarm and OK notifications. */
export function createAlarm(scope: Construct, props: AlarmFactoryProps, spec: AlarmSpec): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, spec.id, {
    alarmName: `${props.namePrefix}-${spec.id}`,
    alarmDescription: alarmDescription(spec.summary, spec.runbook),
    metric: spec.metric,
    threshold: spec.threshold,
    comparisonOperator: spec.comparison,
    evaluationPeriods: spec.evaluationPeriods ?? 3,
    datapointsToAlarm: spec.evaluationPeriods ?? 3,
    treatMissingData: spec.treatMissingData ?? cloudwatch.TreatMissingData.MISSING,
  });
  alarm.addAlarmAction(props.action);
  alarm.addOkAction(props.action);
  return alarm;
}

/** The standard period for platform alarms. */
export const ALARM_PERIOD = Duration.minutes(5);

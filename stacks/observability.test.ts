import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { alarmTopicName, ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import { cacheNodeIds, databaseInstanceId } from '../config/names.ts';
import { RUNBOOKS } from '../constructs/monitoring/runbooks.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

/** Alarm name suffix -> namespace, metric and the runbook its description must link. */
const EXPECTED_ALARMS = {
  'rds-cpu': ['AWS/RDS', 'CPUUtilization', 'rds-performance.md'],
  'rds-free-storage': ['AWS/RDS', 'FreeStorageSpace', 'rds-storage.md'],
  'rds-freeable-memory': ['AWS/RDS', 'FreeableMemory', 'rds-performance.md'],
  'rds-connections': ['AWS/RDS', 'DatabaseConnections', 'rds-performance.md'],
  'rds-replica-lag': ['AWS/RDS', 'OldestReplicationSlotLag', 'rds-failover.md'],
  'cache-cpu': ['AWS/ElastiCache', 'EngineCPUUtilization', 'cache-performance.md'],
  'cache-memory': ['AWS/ElastiCache', 'DatabaseMemoryUsagePercentage', 'cache-performance.md'],
  'cache-evictions': ['AWS/ElastiCache', 'Evictions', 'cache-performance.md'],
  'cache-replication-lag': ['AWS/ElastiCache', 'ReplicationLag', 'cache-failover.md'],
  'eks-failed-nodes': ['ContainerInsights', 'cluster_failed_node_count', 'eks-node-group-replacement.md'],
  'eks-node-count': ['ContainerInsights', 'cluster_node_count', 'eks-node-group-replacement.md'],
} as const;

interface AlarmProps {
  AlarmName: string;
  AlarmDescription: string;
  Namespace?: string;
  MetricName?: string;
  Dimensions?: { Name: string; Value: string }[];
  Metrics?: {
    Id: string;
    Expression?: string;
    MetricStat?: { Metric: { Namespace: string; MetricName: string } };
  }[];
  AlarmActions: unknown[];
  OKActions: unknown[];
}

describe.each(ENVIRONMENT_NAMES)('observability stack in %s', (env) => {
  const config = fixtureConfig(env);
  const observability = () => templateOf(synth[env], 'Observability');
  const alarms = () =>
    Object.values(observability().findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as AlarmProps,
    );

  test('creates the KMS-encrypted alarm topic under the shared name, with the e-mail subscription', () => {
    observability().hasResourceProperties('AWS::SNS::Topic', {
      TopicName: alarmTopicName(config),
      KmsMasterKeyId: Match.anyValue(),
    });
    observability().hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: config.alertEmail,
    });
  });

  test('lets alarms, budgets and cost anomaly detection publish, over TLS only', () => {
    const policy = Object.values(observability().findResources('AWS::SNS::TopicPolicy'))[0]!;
    const text = JSON.stringify(policy.Properties.PolicyDocument);
    for (const service of ['cloudwatch', 'budgets', 'costalerts'])
      expect(text).toContain(`${service}.amazonaws.com`);
    expect(text).toContain('aws:SecureTransport');
  });

  test('has every platform alarm, each notifying the topic and linking its runbook', () => {
    const byName = new Map(alarms().map((a) => [a.AlarmName.replace(`agent-platform-${env}-`, ''), a]));
    expect([...byName.keys()].sort()).toEqual(Object.keys(EXPECTED_ALARMS).sort());
    for (const [name, [namespace, metric, runbook]] of Object.entries(EXPECTED_ALARMS)) {
      const alarm = byName.get(name)!;
      expect(alarm.AlarmDescription).toMatch(new RegExp(`Runbook: runbooks/${runbook.replace('.', '\\.')}$`));
      const metrics = alarm.Metrics?.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric] : [])) ?? [
        { Namespace: alarm.Namespace!, MetricName: alarm.MetricName! },
      ];
      expect(metrics.length).toBeGreaterThan(0);
      for (const m of metrics) expect([m.Namespace, m.MetricName]).toEqual([namespace, metric]);
      expect(alarm.AlarmActions).toHaveLength(1);
      expect(alarm.OKActions).toHaveLength(1);
    }
  });

  test('watches the database by its identifier and every cache node', () => {
    const rds = alarms().find((a) => a.AlarmName.endsWith('rds-cpu'))!;
    expect(rds.Dimensions).toEqual([{ Name: 'DBInstanceIdentifier', Value: databaseInstanceId(config) }]);
    const cache = alarms().find((a) => a.AlarmName.endsWith('cache-cpu'))!;
    expect(JSON.stringify(cache.Metrics)).toContain('MAX([');
    for (const node of cacheNodeIds(config)) expect(JSON.stringify(cache.Metrics)).toContain(node);
  });

  test('fires on free storage below 10% of the allocated storage', () => {
    const storage = alarms().find((a) => a.AlarmName.endsWith('rds-free-storage'))! as AlarmProps & {
      Threshold: number;
    };
    expect(storage.Threshold).toBe(Math.round(config.database.allocatedStorageGiB * 0.1 * 1024 ** 3));
  });

  test('has a dashboard of the alarms', () => {
    observability().hasResourceProperties('AWS::CloudWatch::Dashboard', {
      DashboardName: `agent-platform-${env}`,
    });
  });
});

test.each(Object.values(RUNBOOKS))('linked runbook %s exists with the runbook headings', (runbook) => {
  const file = path.join(ROOT, 'runbooks', runbook);
  expect(existsSync(file)).toBe(true);
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(/^# \S/m);
  for (const heading of ['Symptom', 'Check', 'Act', 'Verify', 'Escalate']) {
    expect(text).toMatch(new RegExp(`^## ${heading}`, 'm'));
  }
});

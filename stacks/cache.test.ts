import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

describe.each(ENVIRONMENT_NAMES)('cache stack in %s', (env) => {
  const config = fixtureConfig(env);
  const cache = () => templateOf(synth[env], 'Cache');

  test('is a Multi-AZ replication group of at least two nodes with automatic failover', () => {
    expect(config.cache.nodeCount).toBeGreaterThanOrEqual(2);
    cache().hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      Engine: 'redis',
      EngineVersion: config.cache.engineVersion,
      CacheNodeType: config.cache.nodeType,
      NumCacheClusters: config.cache.nodeCount,
      MultiAZEnabled: true,
      AutomaticFailoverEnabled: true,
    });
  });

  test('encrypts at rest with KMS and in transit, with an AUTH token from Secrets Manager', () => {
    cache().hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      AtRestEncryptionEnabled: true,
      KmsKeyId: Match.anyValue(),
      TransitEncryptionEnabled: true,
      AuthToken: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('resolve:secretsmanager')])] },
    });
    cache().hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: `agent-platform/${env}/cache/auth`,
      KmsKeyId: Match.anyValue(),
    });
  });

  test('keeps snapshots for the configured days', () => {
    cache().hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      SnapshotRetentionLimit: config.cache.snapshotRetentionDays,
    });
  });

  test('lives in the isolated subnets and admits only the EKS cluster', () => {
    const subnetGroup = Object.values(cache().findResources('AWS::ElastiCache::SubnetGroup'))[0]!;
    expect(JSON.stringify(subnetGroup.Properties.SubnetIds)).toMatch(/isolatedSubnet/);
    expect(subnetGroup.Properties.SubnetIds).toHaveLength(config.availabilityZones.length);
    const ingress = Object.values(cache().findResources('AWS::EC2::SecurityGroupIngress'));
    expect(ingress).toHaveLength(1);
    // The cluster security group, read from the SSM parameter the cluster stack writes.
    expect(JSON.stringify(ingress[0]!.Properties.SourceSecurityGroupId)).toContain('SsmParameterValue');
  });
});

test.each([
  ['dev', 'Delete'],
  ['staging', 'Snapshot'],
  ['prod', 'Snapshot'],
] as const)('%s cache is removed with DeletionPolicy %s', (env, policy) => {
  templateOf(synth[env], 'Cache').hasResource('AWS::ElastiCache::ReplicationGroup', {
    DeletionPolicy: policy,
    UpdateReplacePolicy: policy,
  });
});

import {
  DescribeReplicationGroupsCommand,
  ElastiCacheClient,
  type ReplicationGroup,
  TestFailoverCommand,
} from '@aws-sdk/client-elasticache';
import { RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { runDrill } from './drills.ts';
import { resolveDrillOptions } from './options.ts';

// moto answers TestFailover with HTTP 500 HTML (see drills.test.ts), so the success path is mocked here.
const cacheMock = mockClient(ElastiCacheClient);

function group(
  primary: 'agent-platform-dev-cache-001' | 'agent-platform-dev-cache-002',
  status = 'available',
): ReplicationGroup {
  const members = ['agent-platform-dev-cache-001', 'agent-platform-dev-cache-002'].map((id) => ({
    CacheClusterId: id,
    CurrentRole: id === primary ? 'primary' : 'replica',
  }));
  return {
    ReplicationGroupId: 'agent-platform-dev-cache',
    Status: status,
    AutomaticFailover: 'enabled',
    NodeGroups: [{ NodeGroupId: '0001', NodeGroupMembers: members }],
  };
}

function drill(redisUrl = 'redis://127.0.0.1:6379') {
  const options = resolveDrillOptions(
    {
      env: 'dev',
      redisUrl,
      probeInterval: 100,
      probeTimeout: 500,
      observe: 0.3,
      pollInterval: 0.05,
      timeout: 10,
    },
    {},
  );
  return runDrill('cache-failover', options, {
    rds: new RDSClient({}),
    cache: new ElastiCacheClient({}),
    log: pino({ level: 'silent' }),
  });
}

afterEach(() => cacheMock.reset());

describe('cache-failover with a mocked ElastiCache and the real local Redis', () => {
  it('calls TestFailover on the first node group and passes once a new primary is available', async () => {
    cacheMock
      .on(DescribeReplicationGroupsCommand)
      .resolvesOnce({ ReplicationGroups: [group('agent-platform-dev-cache-001')] })
      .resolvesOnce({ ReplicationGroups: [group('agent-platform-dev-cache-001', 'modifying')] })
      .resolves({ ReplicationGroups: [group('agent-platform-dev-cache-002')] });
    cacheMock.on(TestFailoverCommand).resolves({});
    const report = await drill();
    expect(report.error).toBeUndefined();
    expect(cacheMock.commandCalls(TestFailoverCommand)[0]!.args[0].input).toEqual({
      ReplicationGroupId: 'agent-platform-dev-cache',
      NodeGroupId: '0001',
    });
    expect(report.checks.map((c) => [c.name, c.passed])).toEqual([
      ['cache primary moved', true],
      ['cache writes recovered', true],
      ['cache failover RTO <= 120 s', true],
    ]);
    expect(report.checks[0]!.detail).toBe('agent-platform-dev-cache-001 -> agent-platform-dev-cache-002');
    expect(report.passed).toBe(true);
  });

  it('fails when the primary never moves before the timeout', async () => {
    cacheMock
      .on(DescribeReplicationGroupsCommand)
      .resolves({ ReplicationGroups: [group('agent-platform-dev-cache-001')] });
    cacheMock.on(TestFailoverCommand).resolves({});
    const options = resolveDrillOptions(
      {
        env: 'dev',
        redisUrl: 'redis://127.0.0.1:6379',
        probeInterval: 100,
        observe: 0,
        pollInterval: 0.05,
        timeout: 0.5,
      },
      {},
    );
    const report = await runDrill('cache-failover', options, {
      rds: new RDSClient({}),
      cache: new ElastiCacheClient({}),
      log: pino({ level: 'silent' }),
    });
    expect(report.passed).toBe(false);
    expect(report.error).toMatch(
      /did not report a new primary before the timeout \(status available, primary agent-platform-dev-cache-001\)/,
    );
  });

  it('refuses a group without automatic failover', async () => {
    cacheMock.on(DescribeReplicationGroupsCommand).resolves({
      ReplicationGroups: [{ ...group('agent-platform-dev-cache-001'), AutomaticFailover: 'disabled' }],
    });
    const report = await drill();
    expect(report.error).toBe(
      "replication group 'agent-platform-dev-cache' has AutomaticFailover 'disabled': TestFailover needs it enabled",
    );
    expect(cacheMock.commandCalls(TestFailoverCommand)).toHaveLength(0);
  });

  it('fails before the failover when the prober cannot write to Redis', async () => {
    cacheMock
      .on(DescribeReplicationGroupsCommand)
      .resolves({ ReplicationGroups: [group('agent-platform-dev-cache-001')] });
    const report = await drill('redis://127.0.0.1:1');
    expect(report.error).toMatch(/^the cache prober never wrote successfully before the failover/);
    expect(cacheMock.commandCalls(TestFailoverCommand)).toHaveLength(0);
  });
});

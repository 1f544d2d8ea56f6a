import {
  DescribeReplicationGroupsCommand,
  ElastiCacheClient,
  TestFailoverCommand,
} from '@aws-sdk/client-elasticache';
import { z } from 'zod';
import { DrillError, sleep } from './errors.ts';
import type { WaitOptions } from './rds.ts';

/**
 * One attempt only: TestFailover is not idempotent, and moto answers it with HTTP 500 HTML,
 * which the SDK would otherwise retry as a server error.
 */
export function createElastiCacheClient(): ElastiCacheClient {
  return new ElastiCacheClient({ maxAttempts: 1 });
}

const groupSchema = z.object({
  ReplicationGroupId: z.string(),
  Status: z.string(),
  AutomaticFailover: z.string().optional(),
  NodeGroups: z
    .array(
      z.object({
        NodeGroupId: z.string(),
        NodeGroupMembers: z
          .array(z.object({ CacheClusterId: z.string(), CurrentRole: z.string().optional() }))
          .default([]),
      }),
    )
    .min(1),
});
export type ReplicationGroup = z.infer<typeof groupSchema>;

export async function describeReplicationGroup(
  cache: ElastiCacheClient,
  id: string,
): Promise<ReplicationGroup> {
  try {
    const out = await cache.send(new DescribeReplicationGroupsCommand({ ReplicationGroupId: id }));
    return groupSchema.parse(out.ReplicationGroups?.[0]);
  } catch (error) {
    if ((error as Error).name === 'ReplicationGroupNotFoundFault') {
      throw new DrillError(
        `replication group '${id}' not found: pass '--cache-replication-group <id>' or deploy the cache stack`,
      );
    }
    throw error;
  }
}

/** The primary's cache cluster id in the first node group (cluster mode disabled has exactly one). */
export function primaryOf(group: ReplicationGroup): string | undefined {
  return group.NodeGroups[0]!.NodeGroupMembers.find((m) => m.CurrentRole === 'primary')?.CacheClusterId;
}

/** Raised when the endpoint does not implement TestFailover (moto answers HTTP 500 with an HTML page). */
export class UnsupportedOperationError extends DrillError {
  override readonly name: string = 'UnsupportedOperationError';
}

export async function testFailover(cache: ElastiCacheClient, group: ReplicationGroup): Promise<void> {
  if (group.AutomaticFailover !== undefined && group.AutomaticFailover !== 'enabled') {
    throw new DrillError(
      `replication group '${group.ReplicationGroupId}' has AutomaticFailover '${group.AutomaticFailover}': TestFailover needs it enabled`,
    );
  }
  try {
    await cache.send(
      new TestFailoverCommand({
        ReplicationGroupId: group.ReplicationGroupId,
        NodeGroupId: group.NodeGroups[0]!.NodeGroupId,
      }),
    );
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    if (status === 500 && /Deserialization error|XML parse error|<html/i.test(e.message)) {
      throw new UnsupportedOperationError(
        `ElastiCache TestFailover is not supported by the endpoint ${process.env.AWS_ENDPOINT_URL ?? '(AWS)'}: HTTP 500 with a non-AWS body (moto does not implement TestFailover)`,
      );
    }
    throw error;
  }
}

/** Polls until the group is `available` again with a primary other than `previousPrimary`. */
export async function waitForNewPrimary(
  cache: ElastiCacheClient,
  id: string,
  previousPrimary: string | undefined,
  wait: WaitOptions,
): Promise<string | undefined> {
  for (;;) {
    const group = await describeReplicationGroup(cache, id);
    const primary = primaryOf(group);
    if (group.Status === 'available' && primary !== previousPrimary) return primary;
    if (Date.now() > wait.deadline) {
      throw new DrillError(
        `replication group '${id}' did not report a new primary before the timeout (status ${group.Status}, primary ${primary ?? 'unknown'})`,
      );
    }
    await sleep(wait.pollIntervalMs, wait.signal, `waiting for a new primary of '${id}'`);
  }
}

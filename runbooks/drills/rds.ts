import {
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClustersCommand,
  type DescribeDBClustersCommandOutput,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  FailoverDBClusterCommand,
  RDSClient,
  RebootDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type Tag,
} from '@aws-sdk/client-rds';
import { z } from 'zod';
import { DRILL_ENV_TAG, DRILL_TAG } from '../../config/names.ts';
import { DrillError, sleep, throwIfAborted } from './errors.ts';

/** RDS client; the SDK reads AWS_ENDPOINT_URL itself (moto in tests). */
export function createRdsClient(): RDSClient {
  return new RDSClient({ maxAttempts: 3 });
}

const instanceSchema = z.object({
  DBInstanceIdentifier: z.string(),
  DBInstanceStatus: z.string(),
  DBInstanceArn: z.string(),
  DBInstanceClass: z.string(),
  MultiAZ: z.boolean().optional(),
  AvailabilityZone: z.string().optional(),
  SecondaryAvailabilityZone: z.string().optional(),
  BackupRetentionPeriod: z.number().optional(),
  LatestRestorableTime: z.date().optional(),
  Endpoint: z.object({ Address: z.string(), Port: z.number() }).optional(),
  DBSubnetGroup: z.object({ DBSubnetGroupName: z.string() }).optional(),
  DBParameterGroups: z.array(z.object({ DBParameterGroupName: z.string() })).optional(),
  VpcSecurityGroups: z.array(z.object({ VpcSecurityGroupId: z.string() })).optional(),
  TagList: z.array(z.object({ Key: z.string(), Value: z.string() })).optional(),
});
export type DbInstance = z.infer<typeof instanceSchema>;

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string }).name ?? '';
  return /NotFound/.test(name);
}

export async function describeInstance(rds: RDSClient, id: string): Promise<DbInstance | undefined> {
  try {
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    const first = out.DBInstances?.[0];
    return first ? instanceSchema.parse(first) : undefined;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function requireInstance(rds: RDSClient, id: string): Promise<DbInstance> {
  const instance = await describeInstance(rds, id);
  if (!instance) {
    throw new DrillError(`DB instance '${id}' not found: pass '--db-instance <id>' or deploy the data stack`);
  }
  return instance;
}

export interface WaitOptions {
  readonly pollIntervalMs: number;
  readonly deadline: number;
  readonly signal?: AbortSignal;
}

/** Polls until the instance reports `available`. */
export async function waitForInstanceAvailable(
  rds: RDSClient,
  id: string,
  wait: WaitOptions,
): Promise<DbInstance> {
  for (;;) {
    throwIfAborted(wait.signal, `waiting for '${id}'`);
    const instance = await describeInstance(rds, id);
    if (instance?.DBInstanceStatus === 'available') return instance;
    if (Date.now() > wait.deadline) {
      throw new DrillError(
        `DB instance '${id}' not available before the timeout (status ${instance?.DBInstanceStatus ?? 'missing'})`,
      );
    }
    await sleep(wait.pollIntervalMs, wait.signal, `waiting for '${id}'`);
  }
}

export async function waitForSnapshotAvailable(rds: RDSClient, id: string, wait: WaitOptions): Promise<void> {
  for (;;) {
    throwIfAborted(wait.signal, `waiting for snapshot '${id}'`);
    const out = await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }));
    const status = out.DBSnapshots?.[0]?.Status;
    if (status === 'available') return;
    if (Date.now() > wait.deadline) {
      throw new DrillError(
        `snapshot '${id}' not available before the timeout (status ${status ?? 'missing'})`,
      );
    }
    await sleep(wait.pollIntervalMs, wait.signal, `waiting for snapshot '${id}'`);
  }
}

/** Multi-AZ DB instance failover: a reboot with ForceFailover. Refuses a single-AZ instance (that would be a plain outage). */
export async function failoverInstance(rds: RDSClient, instance: DbInstance): Promise<void> {
  if (!instance.MultiAZ) {
    throw new DrillError(
      `DB instance '${instance.DBInstanceIdentifier}' is not Multi-AZ: a forced failover would be a plain reboot`,
    );
  }
  await rds.send(
    new RebootDBInstanceCommand({ DBInstanceIdentifier: instance.DBInstanceIdentifier, ForceFailover: true }),
  );
}

/** The current writer of a Multi-AZ DB cluster. */
export async function clusterWriter(rds: RDSClient, clusterId: string): Promise<string> {
  let out: DescribeDBClustersCommandOutput;
  try {
    out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }));
  } catch (error) {
    if (isNotFound(error)) {
      throw new DrillError(
        `DB cluster '${clusterId}' not found: pass '--db-cluster <id>' or check '--topology'`,
      );
    }
    throw error;
  }
  const cluster = z
    .object({
      DBClusterMembers: z.array(z.object({ DBInstanceIdentifier: z.string(), IsClusterWriter: z.boolean() })),
    })
    .parse(out.DBClusters?.[0]);
  const writer = cluster.DBClusterMembers.find((m) => m.IsClusterWriter);
  if (!writer) throw new DrillError(`DB cluster '${clusterId}' has no writer`);
  if (cluster.DBClusterMembers.length < 2) {
    throw new DrillError(`DB cluster '${clusterId}' has no reader to fail over to`);
  }
  return writer.DBInstanceIdentifier;
}

export async function failoverCluster(rds: RDSClient, clusterId: string): Promise<void> {
  await rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: clusterId }));
}

export function drillTags(runId: string, env: string): Tag[] {
  return [
    { Key: DRILL_TAG, Value: runId },
    { Key: DRILL_ENV_TAG, Value: env },
  ];
}

export async function createSnapshot(
  rds: RDSClient,
  instanceId: string,
  snapshotId: string,
  tags: Tag[],
): Promise<void> {
  await rds.send(
    new CreateDBSnapshotCommand({
      DBInstanceIdentifier: instanceId,
      DBSnapshotIdentifier: snapshotId,
      Tags: tags,
    }),
  );
}

/**
 * Placement and parameters copied from the source, so the drill instance is reachable the way the source is and
 * runs with the same settings; single-AZ and deletable, since it lives for minutes.
 */
function placement(source: DbInstance) {
  return {
    DBInstanceClass: source.DBInstanceClass,
    DBParameterGroupName: source.DBParameterGroups?.[0]?.DBParameterGroupName,
    DBSubnetGroupName: source.DBSubnetGroup?.DBSubnetGroupName,
    VpcSecurityGroupIds: source.VpcSecurityGroups?.map((g) => g.VpcSecurityGroupId),
    MultiAZ: false,
    PubliclyAccessible: false,
    DeletionProtection: false,
  };
}

export async function restoreFromSnapshot(
  rds: RDSClient,
  source: DbInstance,
  snapshotId: string,
  targetId: string,
  tags: Tag[],
): Promise<void> {
  await rds.send(
    new RestoreDBInstanceFromDBSnapshotCommand({
      DBInstanceIdentifier: targetId,
      DBSnapshotIdentifier: snapshotId,
      Tags: tags,
      ...placement(source),
    }),
  );
}

export async function restoreToPointInTime(
  rds: RDSClient,
  source: DbInstance,
  restoreTime: Date,
  targetId: string,
  tags: Tag[],
): Promise<void> {
  await rds.send(
    new RestoreDBInstanceToPointInTimeCommand({
      SourceDBInstanceIdentifier: source.DBInstanceIdentifier,
      TargetDBInstanceIdentifier: targetId,
      RestoreTime: restoreTime,
      Tags: tags,
      ...placement(source),
    }),
  );
}

/** Deletes a drill instance with no final snapshot and no retained automated backups; a missing one is fine. */
export async function deleteDrillInstance(rds: RDSClient, id: string): Promise<boolean> {
  try {
    await rds.send(
      new DeleteDBInstanceCommand({
        DBInstanceIdentifier: id,
        SkipFinalSnapshot: true,
        DeleteAutomatedBackups: true,
      }),
    );
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

export async function deleteDrillSnapshot(rds: RDSClient, id: string): Promise<boolean> {
  try {
    await rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: id }));
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand, type RDSClient } from '@aws-sdk/client-rds';
import { sleep } from './errors.ts';
import { DRILL_ENV_TAG, DRILL_TAG, drillResourcePrefix } from './options.ts';
import { deleteDrillInstance, deleteDrillSnapshot } from './rds.ts';

/** A resource some drill run created. */
export interface DrillResource {
  readonly kind: 'db-instance' | 'db-snapshot';
  readonly id: string;
  readonly runId: string;
  readonly status: string;
}

type Tags = { Key?: string; Value?: string }[] | undefined;

function tagValue(tags: Tags, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/**
 * A resource counts as a drill leftover only when all three hold: the `dr-drill` tag, the
 * `dr-drill-env` tag naming this environment, and the drill identifier prefix. The source database
 * has none of them, so cleanup cannot reach it.
 */
function isDrillResource(id: string, tags: Tags, env: string, runId: string | undefined): string | undefined {
  const run = tagValue(tags, DRILL_TAG);
  if (!run || tagValue(tags, DRILL_ENV_TAG) !== env || !id.startsWith(drillResourcePrefix(env)))
    return undefined;
  if (runId !== undefined && run !== runId) return undefined;
  return run;
}

/** Drill instances (not already deleting) and manual drill snapshots in this environment, optionally of one run. */
export async function findDrillResources(
  rds: RDSClient,
  env: string,
  runId?: string,
): Promise<DrillResource[]> {
  const found: DrillResource[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(new DescribeDBInstancesCommand({ Marker: marker }));
    for (const i of page.DBInstances ?? []) {
      const run = isDrillResource(i.DBInstanceIdentifier ?? '', i.TagList, env, runId);
      if (run && i.DBInstanceStatus !== 'deleting') {
        found.push({
          kind: 'db-instance',
          id: i.DBInstanceIdentifier!,
          runId: run,
          status: i.DBInstanceStatus ?? '',
        });
      }
    }
    marker = page.Marker;
  } while (marker);
  do {
    const page = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', Marker: marker }));
    for (const s of page.DBSnapshots ?? []) {
      const run = isDrillResource(s.DBSnapshotIdentifier ?? '', s.TagList, env, runId);
      if (run && s.Status !== 'deleting') {
        found.push({ kind: 'db-snapshot', id: s.DBSnapshotIdentifier!, runId: run, status: s.Status ?? '' });
      }
    }
    marker = page.Marker;
  } while (marker);
  return found;
}

export interface CleanupResult {
  readonly deleted: string[];
  readonly failed: string[];
}

export interface DeleteOptions {
  /** Keep retrying a resource that is in a state RDS will not delete from (creating, backing-up) until then. */
  readonly retryUntil: number;
  readonly pollIntervalMs: number;
}

/** RDS refuses to delete an instance or snapshot while it is creating or backing up; that passes. */
function isInvalidState(error: unknown): boolean {
  return /^InvalidDB(Instance|Snapshot)State/.test((error as { name?: string }).name ?? '');
}

/**
 * Deletes the given drill resources, instances first; one failure does not stop the others.
 * Deliberately takes no abort signal: cleanup is what runs after an interruption.
 */
export async function deleteDrillResources(
  rds: RDSClient,
  resources: readonly DrillResource[],
  onError: (resource: DrillResource, error: Error) => void = () => {},
  options: DeleteOptions = { retryUntil: Date.now() + 20 * 60_000, pollIntervalMs: 15_000 },
): Promise<CleanupResult> {
  const result: CleanupResult = { deleted: [], failed: [] };
  const ordered = [...resources].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'db-instance' ? -1 : 1));
  for (const resource of ordered) {
    const label = `${resource.kind}/${resource.id}`;
    for (;;) {
      try {
        const existed =
          resource.kind === 'db-instance'
            ? await deleteDrillInstance(rds, resource.id)
            : await deleteDrillSnapshot(rds, resource.id);
        if (existed) result.deleted.push(label);
        break;
      } catch (error) {
        if (isInvalidState(error) && Date.now() + options.pollIntervalMs < options.retryUntil) {
          await sleep(options.pollIntervalMs);
          continue;
        }
        result.failed.push(label);
        onError(resource, error as Error);
        break;
      }
    }
  }
  return result;
}

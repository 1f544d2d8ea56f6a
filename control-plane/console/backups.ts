import { DescribeDBSnapshotsCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { ScheduledRun } from './health.ts';

/** DescribeDBSnapshots is free but rate-limited: one look per five minutes, whatever the page polls. */
const CACHE_MS = 5 * 60_000;
const CALL_TIMEOUT_MS = 3_000;

/**
 * The database's backups, as the Health page shows them beside the CronJobs: RDS takes them itself
 * (automated snapshots in the backup window), so the latest automated snapshot is their last run.
 */
export class RdsBackupWatch {
  private cached: { at: number; run: ScheduledRun } | null = null;

  constructor(
    private readonly rds: RDSClient,
    private readonly instanceId: string,
    private readonly clock: () => number = Date.now,
  ) {}

  async latest(): Promise<ScheduledRun> {
    const now = this.clock();
    if (this.cached !== null && now - this.cached.at < CACHE_MS) return this.cached.run;
    const run = await this.look();
    this.cached = { at: now, run };
    return run;
  }

  private async look(): Promise<ScheduledRun> {
    const job = `database backups (RDS ${this.instanceId})`;
    const none = { job, lastRunAt: null, finishedAt: null, exitCode: null };
    try {
      let latest: Date | null = null;
      let marker: string | undefined;
      do {
        const page = await this.rds.send(
          new DescribeDBSnapshotsCommand({
            DBInstanceIdentifier: this.instanceId,
            SnapshotType: 'automated',
            Marker: marker,
          }),
          { abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS) },
        );
        for (const s of page.DBSnapshots ?? []) {
          if (
            s.Status === 'available' &&
            s.SnapshotCreateTime &&
            (latest === null || s.SnapshotCreateTime > latest)
          ) {
            latest = s.SnapshotCreateTime;
          }
        }
        marker = page.Marker;
      } while (marker);
      if (latest === null) return { ...none, detail: 'no automated snapshot available' };
      return { job, lastRunAt: latest, finishedAt: latest, exitCode: 0, detail: 'latest automated snapshot' };
    } catch (error) {
      return {
        ...none,
        detail: `unknown: RDS did not answer (${error instanceof Error ? error.message : String(error)})`,
      };
    }
  }
}

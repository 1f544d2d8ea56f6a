import type pg from 'pg';
import type { Logger } from 'pino';
import { type LeaseRun, recordLeaseRuns } from '../tenants/metering/lease-minutes.ts';
import type { EndedLease, LeaseMeterSink } from './lease-store.ts';

interface Pending {
  readonly run: LeaseRun;
  /** Set for an ended lease: forgets it in the lease store once the catalog holds it. */
  readonly acknowledge?: () => Promise<void>;
}

const keyOf = (tenantId: string, taskId: string, startedAt: number) =>
  `${tenantId}\u0000${taskId}\u0000${startedAt}`;

/**
 * Makes leased agent-minutes durable in the catalog (`control.lease_minutes`, per lease and UTC hour).
 *
 * - Heartbeats say how far a live lease has run; they are coalesced per lease and written every
 *   `flushMs`. Losing one (a crash, the catalog down) loses nothing, because the next write of that lease
 *   carries its whole run so far.
 * - Ended leases (released, stopped, expired) stay in the lease store until their write has committed;
 *   only then are they acknowledged. A crash before that hands them over again on the next call for the
 *   tenant or the next sweep.
 * - Every row is an absolute figure written with greatest(), so writing a lease twice, from one replica
 *   or two, counts it once.
 */
export class LeaseMeter implements LeaseMeterSink {
  private pending = new Map<string, Pending>();
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> | null = null;
  private failing = false;
  private lastSweep = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: {
      readonly flushMs: number;
      readonly logger: Logger;
      /** Sweeps expired leases nobody calls about any more, so their ended runs are handed over. */
      readonly sweep?: () => Promise<unknown>;
      /** How often a flush sweeps first. @default - every flush */
      readonly sweepMs?: number;
    },
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  ran(tenantId: string, taskId: string, startedAt: number, at: number): void {
    const key = keyOf(tenantId, taskId, startedAt);
    const seen = this.pending.get(key);
    if (seen?.acknowledge !== undefined || (seen !== undefined && seen.run.until >= at)) return;
    this.pending.set(key, { run: { tenantId, taskId, startedAt, until: at } });
  }

  ended(tenantId: string, leases: readonly EndedLease[], acknowledge: () => Promise<void>): void {
    for (const lease of leases) {
      const run = { tenantId, taskId: lease.taskId, startedAt: lease.startedAt, until: lease.endedAt };
      this.pending.set(keyOf(tenantId, lease.taskId, lease.startedAt), { run, acknowledge });
    }
  }

  /** Writes everything pending now; resolves once written or failed (failures are retried next flush). */
  async flush(): Promise<void> {
    if (this.writing === null) this.writing = this.write().finally(() => (this.writing = null));
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    while (this.writing !== null) await this.writing;
    await this.write();
  }

  private async write(): Promise<void> {
    const now = Date.now();
    if (this.options.sweep !== undefined && now - this.lastSweep >= (this.options.sweepMs ?? 0)) {
      this.lastSweep = now;
      try {
        await this.options.sweep();
      } catch (error) {
        this.options.logger.warn(
          { err: error },
          'lease sweep failed; ended leases are handed over on the next call',
        );
      }
    }
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await recordLeaseRuns(
        this.pool,
        [...batch.values()].map((p) => p.run),
      );
    } catch (error) {
      // Keep what no newer figure replaced; ended leases also stay in the lease store until acknowledged.
      for (const [key, entry] of batch) if (!this.pending.has(key)) this.pending.set(key, entry);
      if (!this.failing) {
        this.options.logger.error(
          { err: error, leases: batch.size },
          'leased minutes not written to the catalog; retrying',
        );
      }
      this.failing = true;
      return;
    }
    if (this.failing) this.options.logger.info('leased minutes written to the catalog again');
    this.failing = false;
    const acknowledgements = new Set(
      [...batch.values()].flatMap((p) => (p.acknowledge ? [p.acknowledge] : [])),
    );
    // All at once: Redis pipelines them into one round trip. One by one, a busy flush (thousands of ended
    // leases) outlasted the flush interval and the pending leases piled up behind it.
    await Promise.all(
      [...acknowledgements].map((acknowledge) =>
        acknowledge().catch((error: unknown) =>
          this.options.logger.warn(
            { err: error },
            'ended leases written but not acknowledged; they are written again',
          ),
        ),
      ),
    );
  }
}

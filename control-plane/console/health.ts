import type pg from 'pg';
import { latestJobRuns } from '../../monitors/job-runs.ts';
import type { HotStore } from '../hot-store.ts';
import type { Metrics } from '../metrics.ts';

interface Snapshot {
  readonly at: number;
  readonly requests: number;
  readonly errors: number;
  /** Cumulative count per histogram bucket upper bound (seconds). */
  readonly buckets: Map<number, number>;
}

export interface TrafficFigures {
  readonly windowSeconds: number;
  readonly requestsPerSecond: number;
  /** Share of 5xx answers; null with no requests in the window. */
  readonly errorRate: number | null;
  /** Upper bound of the histogram bucket holding the 95th percentile; null with no requests. */
  readonly p95Seconds: number | null;
}

/**
 * Request rate, error rate and p95 over the last minute, from the control plane's own Prometheus
 * metrics: a snapshot every `intervalMs`, and figures from the difference with the oldest one kept.
 */
export class TrafficSampler {
  private readonly snapshots: Snapshot[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly metrics: Metrics,
    private readonly windowMs = 60_000,
    intervalMs = 10_000,
  ) {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
  }

  private async take(): Promise<Snapshot> {
    const [counts, durations] = await Promise.all([
      this.metrics.httpRequests.get(),
      this.metrics.httpDuration.get(),
    ]);
    let requests = 0;
    let errors = 0;
    for (const v of counts.values) {
      requests += v.value;
      if (String(v.labels.status).startsWith('5')) errors += v.value;
    }
    const buckets = new Map<number, number>();
    for (const v of durations.values) {
      if (v.metricName !== 'control_plane_http_request_duration_seconds_bucket') continue;
      const bound = (v.labels as Record<string, string | number | undefined>).le;
      const le = bound === '+Inf' ? Number.POSITIVE_INFINITY : Number(bound);
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    }
    return { at: Date.now(), requests, errors, buckets };
  }

  private async sample(): Promise<void> {
    this.snapshots.push(await this.take());
    const cutoff = Date.now() - this.windowMs;
    while (this.snapshots.length > 1 && this.snapshots[1]!.at <= cutoff) this.snapshots.shift();
  }

  async figures(): Promise<TrafficFigures> {
    const now = await this.take();
    const base = this.snapshots[0] ?? now;
    const seconds = Math.max(0.001, (now.at - base.at) / 1000);
    const requests = now.requests - base.requests;
    const bounds = [...now.buckets.keys()].sort((a, b) => a - b);
    let p95: number | null = null;
    if (requests > 0) {
      const target = requests * 0.95;
      for (const le of bounds) {
        if ((now.buckets.get(le) ?? 0) - (base.buckets.get(le) ?? 0) >= target) {
          p95 = le;
          break;
        }
      }
    }
    return {
      windowSeconds: Math.round(seconds),
      requestsPerSecond: requests / seconds,
      errorRate: requests > 0 ? (now.errors - base.errors) / requests : null,
      p95Seconds: p95,
    };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export interface Readiness {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ScheduledRun {
  readonly job: string;
  readonly lastRunAt: Date | null;
  readonly finishedAt: Date | null;
  readonly exitCode: number | null;
  readonly detail: string;
}

/** The platform chart's CronJobs (constructs/platform-workloads.ts); shown even before their first run. */
export const SCHEDULED_JOBS = ['cost-guard', 'billing-export', 'billing-reconcile', 'dr-drill'] as const;

const PROBE_TIMEOUT_MS = 1_000;

async function probe(name: string, check: () => Promise<string>): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
          PROBE_TIMEOUT_MS,
        );
      }),
    ]);
    return { name, ok: true, detail };
  } catch (error) {
    return { name, ok: false, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Catalog and hot store are probed live. Cost Explorer is judged from the guard's last run: a live
 * probe would cost USD 0.01 per page view.
 */
export async function readiness(pool: pg.Pool, store: HotStore): Promise<Readiness[]> {
  return Promise.all([
    probe('catalog (PostgreSQL)', async () => {
      await pool.query('SELECT 1');
      return 'answers';
    }),
    probe(`hot store (${store.kind})`, async () => {
      await store.ping();
      return 'answers';
    }),
    probe('Cost Explorer (last cost-guard run)', async () => {
      const { rows } = await pool.query<{ started_at: Date; problem: string | null; outcome: string | null }>(
        `SELECT started_at, plan ->> 'dataProblem' AS problem, outcome FROM control.cost_guard_runs
          ORDER BY started_at DESC, id DESC LIMIT 1`,
      );
      const run = rows[0];
      if (run === undefined) throw new Error('no cost-guard run yet');
      if (run.problem !== null) throw new Error(`${run.problem} (run at ${run.started_at.toISOString()})`);
      return `data usable at ${run.started_at.toISOString()}${run.outcome === null ? '' : `: ${run.outcome}`}`;
    }),
  ]);
}

/**
 * The last run of each CronJob, as bin/with-heartbeat.ts records it (start, end, exit code), and for the
 * cost guard also its own record of the run (mode and outcome). A job the chart does not schedule in
 * this environment, or one that never ran, says so.
 */
export async function scheduledRuns(pool: pg.Pool): Promise<ScheduledRun[]> {
  const [recorded, guard] = await Promise.all([
    latestJobRuns(pool),
    pool.query<{ mode: string; started_at: Date; outcome: string | null }>(
      `SELECT mode, started_at, outcome FROM control.cost_guard_runs ORDER BY started_at DESC, id DESC LIMIT 1`,
    ),
  ]);
  const byJob = new Map(recorded.map((r) => [r.job, r]));
  const jobs = [...new Set<string>([...SCHEDULED_JOBS, ...byJob.keys()])];
  const guardRun = guard.rows[0];
  return jobs.map((job) => {
    const run = byJob.get(job);
    const own =
      job === 'cost-guard' && guardRun !== undefined
        ? `; guard run at ${guardRun.started_at.toISOString()}: ${guardRun.mode}${guardRun.outcome === null ? '' : `, ${guardRun.outcome}`}`
        : '';
    if (run === undefined) {
      return { job, lastRunAt: null, finishedAt: null, exitCode: null, detail: `no run recorded${own}` };
    }
    const result =
      run.exitCode === null
        ? 'started, no end recorded (running, or killed)'
        : run.exitCode === 0
          ? 'succeeded'
          : `failed with exit code ${run.exitCode}`;
    return {
      job,
      lastRunAt: run.startedAt,
      finishedAt: run.finishedAt,
      exitCode: run.exitCode,
      detail: `${result}${own}`,
    };
  });
}

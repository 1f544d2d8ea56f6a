import { Redis } from 'ioredis';
import pg from 'pg';

/** One write-then-read attempt. */
export interface ProbeSample {
  /** When the attempt started (ms since epoch). */
  readonly at: number;
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error?: string;
}

/** An interval during which writes failed: from the first failed attempt to the next successful one. */
export interface Outage {
  readonly startedAt: number;
  /** Undefined when no write succeeded again before the prober stopped. */
  readonly endedAt?: number;
  readonly failedAttempts: number;
  readonly firstError: string;
}

/**
 * Splits samples into outages. RTO is the first outage's length: from the first failed write
 * to the first successful one after it.
 */
export function findOutages(samples: readonly ProbeSample[]): Outage[] {
  const outages: Outage[] = [];
  let current: { startedAt: number; failedAttempts: number; firstError: string } | undefined;
  for (const sample of samples) {
    if (!sample.ok) {
      if (current) current.failedAttempts += 1;
      else current = { startedAt: sample.at, failedAttempts: 1, firstError: sample.error ?? 'failed' };
    } else if (current) {
      outages.push({ ...current, endedAt: sample.at });
      current = undefined;
    }
  }
  if (current) outages.push(current);
  return outages;
}

/** RTO in seconds; 0 when no write failed, undefined when writes never recovered. */
export function rtoSeconds(samples: readonly ProbeSample[]): number | undefined {
  const first = findOutages(samples)[0];
  if (!first) return 0;
  return first.endedAt === undefined ? undefined : (first.endedAt - first.startedAt) / 1000;
}

/** What a prober does once per interval; it must throw on failure and clean up its own connection. */
export interface ProbeTarget {
  attempt(seq: number): Promise<void>;
  close(): Promise<void>;
}

export interface ProberOptions {
  /** Time between attempt starts. */
  readonly intervalMs: number;
}

/** Runs a ProbeTarget every interval until stopped, keeping every sample. */
export class Prober {
  readonly samples: ProbeSample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private listeners: Array<(sample: ProbeSample) => void> = [];

  constructor(
    private readonly target: ProbeTarget,
    private readonly options: ProberOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let seq = 0;
    while (this.running) {
      const at = Date.now();
      seq += 1;
      let sample: ProbeSample;
      try {
        await this.target.attempt(seq);
        sample = { at, ok: true, latencyMs: Date.now() - at };
      } catch (error) {
        sample = {
          at,
          ok: false,
          latencyMs: Date.now() - at,
          error: (error as Error).message || String(error),
        };
      }
      this.samples.push(sample);
      for (const listener of this.listeners) listener(sample);
      const wait = Math.max(0, at + this.options.intervalMs - Date.now());
      if (this.running && wait > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  /** Calls the listener with every sample from now on. */
  onSample(listener: (sample: ProbeSample) => void): void {
    this.listeners.push(listener);
  }

  /** Resolves with the next sample that matches. */
  next(predicate: (sample: ProbeSample) => boolean): Promise<ProbeSample> {
    return new Promise((resolve) => {
      const listener = (sample: ProbeSample) => {
        if (!predicate(sample)) return;
        this.listeners = this.listeners.filter((l) => l !== listener);
        resolve(sample);
      };
      this.listeners.push(listener);
    });
  }

  /** True once a write has failed and none has succeeded since. */
  get inOutage(): boolean {
    return this.samples.at(-1)?.ok === false;
  }

  async stop(): Promise<ProbeSample[]> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.target.close();
    return this.samples;
  }
}

/** Schema the PostgreSQL prober writes to; it is not a tenant schema, so verification ignores it. */
export const PROBE_SCHEMA = 'dr_drill';

const PROBE_TABLE_DDL = `CREATE SCHEMA IF NOT EXISTS ${PROBE_SCHEMA};
CREATE TABLE IF NOT EXISTS ${PROBE_SCHEMA}.probe (
  run_id text NOT NULL, seq integer NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, seq))`;

/** Writes one marker row to the source and returns the server's commit-side time of that write. */
export async function writeMarker(client: pg.ClientBase, runId: string, seq: number): Promise<Date> {
  await client.query(PROBE_TABLE_DDL);
  const { rows } = await client.query<{ written_at: Date }>(
    `INSERT INTO ${PROBE_SCHEMA}.probe (run_id, seq) VALUES ($1, $2) RETURNING written_at`,
    [runId, seq],
  );
  return rows[0]!.written_at;
}

/**
 * Writes a row and reads it back over one connection, reconnecting after any failure
 * (a failover drops every connection). Timeouts keep a dead endpoint from stalling the interval.
 */
export function postgresProbeTarget(databaseUrl: string, runId: string, timeoutMs: number): ProbeTarget {
  let client: pg.Client | undefined;
  let prepared = false;
  const drop = async () => {
    const old = client;
    client = undefined;
    await old?.end().catch(() => {});
  };
  return {
    async attempt(seq) {
      try {
        if (!client) {
          const next = new pg.Client({
            connectionString: databaseUrl,
            connectionTimeoutMillis: timeoutMs,
            query_timeout: timeoutMs,
            application_name: `dr-drill-${runId}`,
          });
          next.on('error', () => {});
          client = next;
          await next.connect();
        }
        if (!prepared) {
          await client.query(PROBE_TABLE_DDL);
          prepared = true;
        }
        await client.query(`INSERT INTO ${PROBE_SCHEMA}.probe (run_id, seq) VALUES ($1, $2)`, [runId, seq]);
        const read = await client.query(
          `SELECT seq FROM ${PROBE_SCHEMA}.probe WHERE run_id = $1 AND seq = $2`,
          [runId, seq],
        );
        if (read.rowCount !== 1) throw new Error(`probe row ${seq} not read back`);
      } catch (error) {
        await drop();
        throw error;
      }
    },
    close: drop,
  };
}

/** SET then GET one key with a short TTL; no offline queue, so a dead primary fails fast instead of buffering. */
export function redisProbeTarget(redisUrl: string, runId: string, timeoutMs: number): ProbeTarget {
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => Math.min(timeoutMs, 500),
  });
  redis.on('error', () => {});
  const key = `dr-drill:${runId}:probe`;
  let connecting: Promise<void> | undefined;
  return {
    async attempt(seq) {
      if (redis.status === 'wait') {
        connecting ??= redis.connect();
        await connecting;
      }
      await redis.set(key, String(seq), 'EX', 300);
      const read = await redis.get(key);
      if (read !== String(seq)) throw new Error(`read back '${read}' instead of '${seq}'`);
    },
    async close() {
      redis.disconnect();
    },
  };
}

import pg from 'pg';
import { z } from 'zod';
import { type HeartbeatRun, runWithHeartbeat } from './heartbeat.ts';

/** The same rule as the catalog's CHECK on control.job_runs.job. */
export const jobName = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,62}$/,
    'must be a lowercase name of letters, digits and hyphens (a CronJob name)',
  );

/** A catalog that does not answer must not hold up, or fail, the job itself. */
const CATALOG_TIMEOUT_MS = 5_000;

export interface RecordedRun extends HeartbeatRun {
  /** 'recorded', 'skipped' (no catalog URL), or why the catalog could not record the run. */
  readonly record: string;
}

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Runs a scheduled job through runWithHeartbeat, and records the run in the catalog's control.job_runs:
 * a row when it starts, its end and exit code when it exits. The job runs, and keeps its exit code,
 * whether or not the catalog answers; a run whose start could not be written is recorded whole at its end.
 */
export async function runRecorded(options: {
  readonly job: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly heartbeatUrl: string | undefined;
  /** The catalog; without it the run is not recorded. */
  readonly databaseUrl: string | undefined;
}): Promise<RecordedRun> {
  if (options.databaseUrl === undefined || options.databaseUrl === '') {
    return {
      ...(await runWithHeartbeat(options.command, options.args, options.heartbeatUrl)),
      record: 'skipped',
    };
  }
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: 1,
    connectionTimeoutMillis: CATALOG_TIMEOUT_MS,
    query_timeout: CATALOG_TIMEOUT_MS,
  });
  pool.on('error', () => {});
  try {
    const startedAt = new Date();
    let id: string | null = null;
    let problem: string | null = null;
    try {
      const { rows } = await pool.query<{ id: string }>(
        'INSERT INTO control.job_runs (job, started_at) VALUES ($1, $2) RETURNING id',
        [options.job, startedAt],
      );
      id = rows[0]!.id;
    } catch (error) {
      problem = reason(error);
    }
    const run = await runWithHeartbeat(options.command, options.args, options.heartbeatUrl);
    try {
      if (id === null) {
        await pool.query(
          'INSERT INTO control.job_runs (job, started_at, finished_at, exit_code) VALUES ($1, $2, now(), $3)',
          [options.job, startedAt, run.exitCode],
        );
      } else {
        await pool.query('UPDATE control.job_runs SET finished_at = now(), exit_code = $2 WHERE id = $1', [
          id,
          run.exitCode,
        ]);
      }
      return { ...run, record: 'recorded' };
    } catch (error) {
      return { ...run, record: problem ?? reason(error) };
    }
  } finally {
    await pool.end();
  }
}

export interface JobRun {
  readonly job: string;
  readonly startedAt: Date;
  /** Null while the run is going, or when it was killed before it could record its end. */
  readonly finishedAt: Date | null;
  readonly exitCode: number | null;
}

/** The latest recorded run of each job. */
export async function latestJobRuns(pool: pg.Pool): Promise<JobRun[]> {
  const { rows } = await pool.query<{
    job: string;
    started_at: Date;
    finished_at: Date | null;
    exit_code: number | null;
  }>(
    `SELECT DISTINCT ON (job) job, started_at, finished_at, exit_code FROM control.job_runs
      ORDER BY job, started_at DESC, id DESC`,
  );
  return rows.map((r) => ({
    job: r.job,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
  }));
}

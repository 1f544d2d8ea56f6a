import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { latestJobRuns } from '../monitors/job-runs.ts';
import { createCatalogDatabase, type TestDatabase } from '../tenants/testing/pg.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let db: TestDatabase;
let pool: pg.Pool;

/** The wrapper as the CronJob runs it, around a node one-liner. */
function wrapper(args: string[], env: Record<string, string | undefined>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bin', 'with-heartbeat.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, HEARTBEAT_URL: '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  ({ db, pool } = await createCatalogDatabase('with_heartbeat_cli', 2));
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('with-heartbeat records each run of a scheduled job', () => {
  test('a failing run is recorded with its start, end and exit code, and the wrapper keeps the code', async () => {
    const before = Date.now();
    const run = await wrapper(
      ['--job', 'dr-drill', '--', process.execPath, '-e', 'setTimeout(() => process.exit(3), 200)'],
      {
        DATABASE_URL: db.url,
      },
    );
    expect(run).toMatchObject({ code: 3, stderr: '' });
    const [recorded] = await latestJobRuns(pool);
    expect(recorded).toMatchObject({ job: 'dr-drill', exitCode: 3 });
    expect(recorded!.startedAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);
    expect(recorded!.finishedAt!.getTime() - recorded!.startedAt.getTime()).toBeGreaterThanOrEqual(150);
  });

  test('the latest run of each job is the one shown', async () => {
    await wrapper(['--job', 'dr-drill', '--', process.execPath, '-e', ''], { DATABASE_URL: db.url });
    await wrapper(['--job', 'cost-guard', '--', process.execPath, '-e', ''], { DATABASE_URL: db.url });
    expect((await latestJobRuns(pool)).map((r) => [r.job, r.exitCode])).toEqual([
      ['cost-guard', 0],
      ['dr-drill', 0],
    ]);
  });

  test('an unreachable catalog costs one line, not the job: it runs and keeps its exit code', async () => {
    const run = await wrapper(
      ['--job', 'cost-guard', '--', process.execPath, '-e', 'console.log("ran"); process.exit(4)'],
      {
        DATABASE_URL: 'postgresql://postgres@127.0.0.1:9/nowhere',
      },
    );
    expect(run.code).toBe(4);
    expect(run.stdout).toBe('ran\n');
    expect(run.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^with-heartbeat: run of cost-guard not recorded in the catalog: .*ECONNREFUSED/),
    ]);
  });

  test('without DATABASE_URL nothing is recorded and nothing is said', async () => {
    const run = await wrapper(['--job', 'cost-guard', '--', process.execPath, '-e', ''], {
      DATABASE_URL: undefined,
    });
    expect(run).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  test('a bad job name is one line and a non-zero exit, and the command does not run', async () => {
    const run = await wrapper(['--job', 'Cost Guard', '--', process.execPath, '-e', 'console.log("ran")'], {
      DATABASE_URL: db.url,
    });
    expect(run.code).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/option '--job <name>' argument 'Cost Guard' is invalid/);
  });
});

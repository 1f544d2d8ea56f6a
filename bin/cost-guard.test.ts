import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { costQuery } from '../tenants/cost-guard/costs.ts';
import { cePage } from '../tenants/cost-guard/fixtures.ts';
import { type MotoServer, startMoto } from '../tenants/testing/moto.ts';
import { createCatalogDatabase, type TestDatabase } from '../tenants/testing/pg.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let db: TestDatabase;
let pool: pg.Pool;
let moto: MotoServer;

/** The CLI as a CronJob runs it: its exit code and output are what the scheduler sees. */
function cli(bin: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bin', bin), ...args],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          DATABASE_URL: db.url,
          AWS_ENDPOINT_URL: moto.endpoint,
          LOG_LEVEL: 'silent',
          ...env,
        },
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  moto = await startMoto();
  ({ db, pool } = await createCatalogDatabase('cost_guard_cli', 2));
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
  await moto?.stop();
});

describe('every expected failure prints one line and exits non-zero', () => {
  test.each([
    [
      'cost-guard.ts',
      ['--env', 'nosuch'],
      {},
      "error: unknown environment 'nosuch': expected one of dev, staging, prod",
    ],
    ['cost-guard.ts', ['run', '--replay', 'abc'], {}, "error: '--replay' (abc) must be a run id"],
    [
      'cost-guard.ts',
      ['--kube-api', 'no-such-context', 'resume', 'nosuch-tenant', '--reason', 'test'],
      { KUBECONFIG: '/nonexistent/kubeconfig' },
      /^error: cannot read the kubeconfig: /,
    ],
    ['cost-guard.ts', ['run', '--replay', '999999'], {}, 'error: cost guard run 999999 does not exist'],
    [
      'cost-guard.ts',
      ['resume', 'nosuch-tenant', '--reason', 'test'],
      {},
      "error: tenant 'nosuch-tenant' does not exist",
    ],
    [
      'cost-guard.ts',
      ['override', 'set', 'nosuch-tenant', '--until', 'soon', '--reason', 'test'],
      {},
      "error: 'until' (soon) is not an ISO date or time",
    ],
    [
      'cost-guard.ts',
      ['run'],
      { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' },
      /^error: Cost Explorer GetCostAndUsage failed on page 1: .*ECONNREFUSED.*; no action taken$/,
    ],
    [
      'cost-report.ts',
      ['--env', 'nosuch'],
      {},
      "error: unknown environment 'nosuch': expected one of dev, staging, prod",
    ],
  ])('%s %j', async (bin, args, env, line) => {
    const result = await cli(bin, args, env);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test('a run that could not use its cost data is recorded and exits non-zero', async () => {
    // The CLI reads the real clock: the answer covers this month so far and no day carries cost.
    const { Start, End } = costQuery(new Date()).TimePeriod!;
    await moto.seedCostAndUsage([cePage([], { start: Start!, end: End! })]);
    const result = await cli('cost-guard.ts', ['run', '--json']);
    expect(result.code).toBe(1);
    // The run logs its progress as JSON lines; the one human line is the error.
    const human = result.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect(human).toEqual([
      'error: run ' +
        JSON.parse(result.stdout).runId +
        ' kept every state: cost data has no day carrying cost yet',
    ]);
    expect(JSON.parse(result.stdout).plan.dataProblem).toMatch(/no day carrying cost/);
  });
});

// The suites' setup, scenario functions and teardown against a real control plane (its own process,
// a fresh catalog database, Redis), run under the k6 stand-in because k6 cannot be installed here.
// This proves the scripts' requests and checks match the API; thresholds and load need real k6.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../../tenants/testing/pg.ts';
import { mintOperatorToken, scriptPath } from '../gate.ts';
import { RATELIMIT_ROUNDS, type SuiteName } from '../suites.ts';
import { context, recorded, resetRecorded } from '../testing/k6-standin.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const STAND_IN = path.join(ROOT, 'loadtests', 'testing', 'k6-standin.ts');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const JWT_SECRET = 'load-gate-scripts-test-secret-0123456789';
const REDIS_PREFIX = `lgtest:${process.pid}:${Date.now()}:`;

// Each k6 module the scripts import, as a re-export of the stand-in.
const K6_MODULES: Record<string, string> = {
  k6: 'export { check, fail, sleep } from "STAND_IN";',
  'k6/http': 'import { http } from "STAND_IN"; export default http;',
  'k6/metrics': 'export { Counter, Rate } from "STAND_IN";',
  'k6/execution': 'import { exec } from "STAND_IN"; export default exec;',
  'k6/encoding': 'import { encoding } from "STAND_IN"; export default encoding;',
};

const standInPlugin: Plugin = {
  name: 'k6-stand-in',
  setup(b) {
    b.onResolve({ filter: /^k6(\/.*)?$/ }, (args) => ({ path: args.path, namespace: 'k6' }));
    b.onLoad({ filter: /.*/, namespace: 'k6' }, (args) => {
      const contents = K6_MODULES[args.path];
      if (contents === undefined) throw new Error(`the k6 stand-in has no module '${args.path}'`);
      return { contents: contents.replace('STAND_IN', STAND_IN), loader: 'js', resolveDir: ROOT };
    });
  },
};

type Suite = Record<string, (data?: unknown) => unknown>;

let scratch: string;
let db: TestDatabase;
let server: ChildProcess;

async function loadSuite(suite: SuiteName): Promise<Suite> {
  const outfile = path.join(scratch, `${suite}.mjs`);
  await build({
    entryPoints: [scriptPath(suite)],
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile,
    plugins: [standInPlugin],
    logLevel: 'silent',
  });
  return (await import(pathToFileURL(outfile).href)) as Suite;
}

/** An exported function of the script; a missing one fails the test by name. */
function exported(suite: Suite, name: string): (data?: unknown) => unknown {
  const fn = suite[name];
  if (typeof fn !== 'function') throw new Error(`the script exports no function '${name}'`);
  return fn;
}

/** Calls a scenario function `times` times, as iterations 0..times-1 of one VU. */
function iterate(suite: Suite, name: string, data: unknown, times: number): void {
  const fn = exported(suite, name);
  for (let i = 0; i < times; i += 1) {
    context.iteration = i;
    fn(data);
  }
}

const failedChecks = () => [...new Set(recorded.checks.filter((c) => !c.ok).map((c) => c.name))];

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'load-gate-scripts-'));
  db = await createTestDatabase('load_gate_scripts');
  server = spawn(process.execPath, ['--import', TSX, path.join(ROOT, 'bin', 'control-plane.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DATABASE_URL: db.url,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: REDIS_PREFIX,
      JWT_SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      MANIFESTS_DIR: path.join(scratch, 'manifests'),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`control plane exited with ${code} before listening`)));
    createInterface({ input: server.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; address?: string };
      if (entry.msg === 'control plane listening' && entry.address) resolve(entry.address);
    });
  });
  (globalThis as { __ENV?: Record<string, string> }).__ENV = {
    BASE_URL: baseUrl,
    OPERATOR_TOKEN: await mintOperatorToken(JWT_SECRET),
  };
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  if (db) {
    // Provisioning made one role per tenant, and roles are server-wide.
    const catalog = new pg.Client({ connectionString: db.url });
    await catalog.connect();
    const { rows } = await catalog.query<{ id: string }>('SELECT id FROM control.tenants');
    await catalog.end();
    await db.drop();
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    for (const { id } of rows) await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(id)}`);
    await admin.end();
  }
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
  const keys = await redis.keys(`${REDIS_PREFIX}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}, 60_000);

beforeEach(() => resetRecorded());

describe('suites against the control plane (k6 stand-in)', () => {
  test('smoke: the traffic mix passes every check and teardown suspends the tenant', async () => {
    const suite = await loadSuite('smoke');
    const data = exported(suite, 'setup')();
    iterate(suite, 'traffic', data, 3);
    exported(suite, 'teardown')(data);
    expect(failedChecks()).toEqual([]);
    expect(recorded.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'me: 200 with own id',
        'usage: replay with same Idempotency-Key is a duplicate',
        'release: own admitted task released',
        'teardown: test tenant suspended',
      ]),
    );
    expect(recorded.statuses.filter((s) => s >= 400)).toEqual([]);
  });

  test('isolation: every cross-tenant attempt is refused and B is untouched', async () => {
    const suite = await loadSuite('isolation');
    const data = exported(suite, 'setup')();
    iterate(suite, 'attempts', data, 2);
    exported(suite, 'teardown')(data);
    expect(failedChecks()).toEqual([]);
    expect(recorded.counters.get('isolation_breaches') ?? 0).toBe(0);
    expect(recorded.counters.get('isolation_attempts')).toBeGreaterThanOrEqual(2 * 12);
  });

  test('ratelimit: each fresh tenant gets exactly its limit, the calm tenant never sees 429', async () => {
    const suite = await loadSuite('ratelimit');
    const data = exported(suite, 'setup')();
    iterate(suite, 'atLimit', data, RATELIMIT_ROUNDS);
    expect(recorded.rates.get('ratelimit_exact')).toEqual(Array(RATELIMIT_ROUNDS).fill(true));
    expect(recorded.counters.get('ratelimit_expected_429')).toBeGreaterThan(0);
    expect(failedChecks()).toEqual([]);

    // The last tenant bursts again while its burst allowance is spent: the exactness check must fail.
    resetRecorded();
    context.iteration = RATELIMIT_ROUNDS - 1;
    exported(suite, 'atLimit')(data);
    expect(recorded.rates.get('ratelimit_exact')).toEqual([false]);
    expect(failedChecks()).toContain('at limit: exactly requestsPerSecond + burst requests accepted');

    resetRecorded();
    iterate(suite, 'underLimit', data, 5);
    expect(recorded.counters.get('ratelimit_unexpected_429') ?? 0).toBe(0);
    expect(failedChecks()).toEqual([]);
    exported(suite, 'teardown')(data);
  });
});

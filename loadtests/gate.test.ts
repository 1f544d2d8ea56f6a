import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  EXIT_K6_MISSING,
  K6_EXIT_THRESHOLDS_CROSSED,
  k6Arguments,
  k6CommandLine,
  LoadGateError,
  parseRequest,
  runLoadGate,
  scriptPath,
} from './gate.ts';
import { K6_PROCESS_STANDIN } from './testing/k6-standin.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';
// The CLI runs from a temporary directory, so tsx is named by its file rather than looked up from cwd.
const TSX = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

let work: string;
let fakeBin: string;
let emptyBin: string;

// A stand-in `k6` that records its argv and the token it was given, then exits with K6_EXIT.
beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'load-gate-'));
  fakeBin = path.join(work, 'bin');
  emptyBin = path.join(work, 'empty');
  for (const dir of [fakeBin, emptyBin]) mkdirSync(dir);
  const k6 = path.join(fakeBin, 'k6');
  writeFileSync(
    k6,
    [
      '#!/bin/sh',
      'printf "%s\\n" "$@" > "$K6_ARGV_FILE"',
      'printf "%s" "$OPERATOR_TOKEN" > "$K6_TOKEN_FILE"',
      'exit "$K6_EXIT"',
      '',
    ].join('\n'),
  );
  chmodSync(k6, 0o755);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

function fakeEnv(name: string, extra: Record<string, string>) {
  const argvFile = path.join(work, `${name}.argv`);
  const tokenFile = path.join(work, `${name}.token`);
  return {
    env: {
      PATH: `${fakeBin}:${SYSTEM_PATH}`,
      K6_EXIT: '0',
      K6_ARGV_FILE: argvFile,
      K6_TOKEN_FILE: tokenFile,
      ...extra,
    },
    argv: () => readFileSync(argvFile, 'utf8').trimEnd().split('\n'),
    token: () => readFileSync(tokenFile, 'utf8'),
  };
}

const request = (reportsDir: string) => ({ suite: 'load', baseUrl: 'http://127.0.0.1:8080/', reportsDir });

describe('runLoadGate with a stand-in k6 on PATH', () => {
  test.each([
    [0, 'pass'],
    [K6_EXIT_THRESHOLDS_CROSSED, 'thresholds crossed'],
    [107, 'script error'],
  ])('returns k6 exit code %i (%s)', async (code) => {
    const fake = fakeEnv(`exit-${code}`, { K6_EXIT: String(code), OPERATOR_TOKEN: 'operator-token-value' });
    const reportsDir = path.join(work, `reports-${code}`);
    expect(await runLoadGate(request(reportsDir), { env: fake.env })).toBe(code);
    expect(existsSync(reportsDir)).toBe(true);
    expect(fake.argv()).toEqual([
      'run',
      '--env',
      'BASE_URL=http://127.0.0.1:8080',
      '--env',
      `REPORT_DIR=${reportsDir}`,
      '--tag',
      'suite=load',
      path.join(ROOT, 'loadtests', 'scripts', 'load.ts'),
    ]);
    // The token reaches k6 through the environment only, never the (world-readable) argv.
    expect(fake.token()).toBe('operator-token-value');
    expect(fake.argv().join(' ')).not.toContain('operator-token-value');
  });

  test('mints an HS256 operator JWT from JWT_SECRET when OPERATOR_TOKEN is absent', async () => {
    const fake = fakeEnv('mint', { JWT_SECRET: 'load-gate-test-secret' });
    expect(await runLoadGate(request(path.join(work, 'reports-mint')), { env: fake.env })).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(
      fake.token(),
      new TextEncoder().encode('load-gate-test-secret'),
    );
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.role).toBe('operator');
    expect(payload.sub).toBe('load-gate');
    expect(payload.exp! - payload.iat!).toBe(7200);
  });

  test('refuses to run without OPERATOR_TOKEN or JWT_SECRET', async () => {
    const fake = fakeEnv('no-token', {});
    await expect(runLoadGate(request(path.join(work, 'r')), { env: fake.env })).rejects.toThrow(
      /set OPERATOR_TOKEN, or JWT_SECRET/,
    );
  });
});

describe('runLoadGate without k6', () => {
  test('prints how to install k6 and exits non-zero', async () => {
    let written = '';
    const stderr = new Writable({
      write(chunk, _encoding, done) {
        written += String(chunk);
        done();
      },
    });
    const code = await runLoadGate(request(path.join(work, 'r')), {
      env: { PATH: emptyBin, OPERATOR_TOKEN: 'x' },
      stderr,
    });
    expect(code).toBe(EXIT_K6_MISSING);
    expect(code).not.toBe(0);
    expect(written).toMatch(/^k6 is not on PATH, so no load gate ran/);
    expect(written).toContain('https://grafana.com/docs/k6/latest/set-up/install-k6/');
  });
});

describe('parseRequest', () => {
  test('names a bad suite and a bad URL in one line', () => {
    expect(() => parseRequest({ suite: 'lod', baseUrl: 'ftp://x', reportsDir: 'r' })).toThrow(LoadGateError);
    expect(() => parseRequest({ suite: 'lod', baseUrl: 'ftp://x', reportsDir: 'r' })).toThrow(
      "unknown suite 'lod': expected one of smoke, load, peak, ratelimit, isolation; --base-url 'ftp://x' is not an http(s) URL",
    );
  });

  test('k6CommandLine is the command CI runs', () => {
    const valid = parseRequest({ suite: 'peak', baseUrl: 'https://cp.example.com', reportsDir: '/r' });
    expect(k6CommandLine(valid)).toBe(
      `k6 run --env BASE_URL=https://cp.example.com --env REPORT_DIR=/r --tag suite=peak ${scriptPath('peak')}`,
    );
    expect(k6Arguments(valid).at(-1)).toBe(scriptPath('peak'));
  });
});

describe('bin/load-gate.ts', () => {
  const cli = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', TSX, path.join(ROOT, 'bin', 'load-gate.ts'), ...args], {
      cwd: work,
      env: { ...env, HOME: work },
      encoding: 'utf8',
    });

  test('exits with the stand-in k6 exit code 99', () => {
    const fake = fakeEnv('cli-99', { K6_EXIT: '99', OPERATOR_TOKEN: 't' });
    const run = cli(['--suite', 'ratelimit', '--base-url', 'http://127.0.0.1:9'], fake.env);
    expect(run.status).toBe(99);
    expect(fake.argv()).toContain('suite=ratelimit');
    expect(fake.argv()).toContain(`REPORT_DIR=${path.join(work, 'reports')}`);
  });

  describe('signals', () => {
    let signalBin: string;
    beforeAll(() => {
      signalBin = path.join(work, 'signal-bin');
      mkdirSync(signalBin);
      writeFileSync(path.join(signalBin, 'k6'), K6_PROCESS_STANDIN);
      chmodSync(path.join(signalBin, 'k6'), 0o755);
    });

    /** Starts the gate on the signal-modelling k6, in its own process group like a CI job step. */
    async function startGate(name: string) {
      const events = path.join(work, `${name}.events`);
      const pidFile = path.join(work, `${name}.pid`);
      const reportsDir = path.join(work, `${name}-reports`);
      const gate = spawn(
        process.execPath,
        [
          '--import',
          TSX,
          path.join(ROOT, 'bin', 'load-gate.ts'),
          '--suite',
          'smoke',
          '--base-url',
          'http://127.0.0.1:9',
          '--reports-dir',
          reportsDir,
        ],
        {
          cwd: work,
          detached: true,
          env: {
            PATH: `${signalBin}:${SYSTEM_PATH}`,
            OPERATOR_TOKEN: 't',
            HOME: work,
            K6_EVENTS: events,
            K6_PID_FILE: pidFile,
            K6_STOP_TENTHS: '4',
          },
        },
      );
      let stdout = '';
      gate.stdout.on('data', (chunk) => {
        stdout += String(chunk);
      });
      await new Promise<void>((resolve) =>
        gate.stdout.on('data', () => stdout.includes('started') && resolve()),
      );
      const exited = new Promise<number | null>((resolve) => gate.on('exit', (code) => resolve(code)));
      return {
        gate,
        exited,
        stdout: () => stdout,
        events: () => readFileSync(events, 'utf8').trim().split('\n'),
        k6Pid: Number(readFileSync(pidFile, 'utf8')),
        report: () =>
          JSON.parse(readFileSync(path.join(reportsDir, 'smoke-summary.json'), 'utf8')) as {
            result: { passed: boolean; aborted?: { exitCode: number } };
          },
        junit: () => readFileSync(path.join(reportsDir, 'smoke-junit.xml'), 'utf8'),
      };
    }

    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    test('SIGTERM to the gate reaches k6, the gate waits for its teardown, and the reports say aborted', async () => {
      const run = await startGate('term-gate');
      run.gate.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 150));
      // k6 is still stopping: the gate has not left it behind.
      expect(run.gate.exitCode).toBeNull();
      expect(await run.exited).toBe(105);
      expect(alive(run.k6Pid)).toBe(false);
      expect(run.events()).toEqual(['started', 'teardown']);
      expect(run.report().result.passed).toBe(false);
      expect(run.report().result.aborted?.exitCode).toBe(105);
      expect(run.junit()).toContain('k6 run aborted (exit 105)');
      expect(run.stdout()).toContain('load-gate smoke: ABORTED (k6 run aborted (exit 105))');
    });

    test('SIGTERM to the whole process group still ends in one graceful stop with teardown', async () => {
      const run = await startGate('term-group');
      process.kill(-run.gate.pid!, 'SIGTERM');
      expect(await run.exited).toBe(105);
      expect(run.events()).toEqual(['started', 'teardown']);
      expect(run.report().result.aborted?.exitCode).toBe(105);
    });

    test('Ctrl-C then SIGTERM: k6 is stopped once and its teardown still runs', async () => {
      const run = await startGate('int-then-term');
      process.kill(-run.gate.pid!, 'SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 100));
      process.kill(-run.gate.pid!, 'SIGTERM');
      expect(await run.exited).toBe(105);
      expect(run.events()).toEqual(['started', 'teardown']);
    });
  });

  test('exits non-zero with the install hint when k6 is missing', () => {
    const run = cli(['--suite', 'smoke', '--base-url', 'http://127.0.0.1:9'], {
      PATH: `${emptyBin}:${path.dirname(process.execPath)}`,
      OPERATOR_TOKEN: 't',
    });
    expect(run.status).toBe(EXIT_K6_MISSING);
    expect(run.stderr).toContain('k6 is not on PATH');
  });

  test('exits 2 with one line for a bad suite', () => {
    const run = cli(['--suite', 'nope', '--base-url', 'http://127.0.0.1:9'], { PATH: SYSTEM_PATH });
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      "load-gate: unknown suite 'nope': expected one of smoke, load, peak, ratelimit, isolation",
    ]);
  });
});

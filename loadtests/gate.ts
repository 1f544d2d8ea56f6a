// Node side of the load gate: validates the request, finds k6, mints the operator token if needed,
// runs `k6 run` on the suite script and hands back k6's exit code unchanged.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import pino from 'pino';
import { z } from 'zod';
import { newRunId } from './lib/ids.ts';
import { abortedReports, reportPaths } from './lib/report.ts';
import { retireSuiteTenants } from './suite-tenants.ts';
import { SUITE_NAMES, type SuiteName } from './suites.ts';

/** Bad input or missing configuration; one line naming the value. */
export class LoadGateError extends Error {
  override readonly name = 'LoadGateError';
}

/** Exit code when k6 is not installed, as a shell reports a missing command. */
export const EXIT_K6_MISSING = 127;
/** k6's exit code when a threshold was crossed. */
export const K6_EXIT_THRESHOLDS_CROSSED = 99;

export const K6_INSTALL_HINT = [
  'k6 is not on PATH, so no load gate ran. Install k6 v1.x (it runs the TypeScript suites as they are):',
  '  Debian/Ubuntu: add the Grafana k6 apt repository and `apt-get install k6`',
  '  macOS: `brew install k6`',
  '  any OS: a release binary from https://github.com/grafana/k6/releases',
  '  container: `docker run --rm -v "$PWD/loadtests:/loadtests" grafana/k6 run /loadtests/scripts/<suite>.ts`',
  'See https://grafana.com/docs/k6/latest/set-up/install-k6/',
].join('\n');

export const LOADTESTS_DIR = path.dirname(fileURLToPath(import.meta.url));

const requestSchema = z.object({
  suite: z.enum(SUITE_NAMES, {
    error: (issue) => `unknown suite '${String(issue.input)}': expected one of ${SUITE_NAMES.join(', ')}`,
  }),
  baseUrl: z.url({
    protocol: /^https?$/,
    error: (issue) => `--base-url '${String(issue.input)}' is not an http(s) URL`,
  }),
  reportsDir: z.string().min(1, '--reports-dir must not be empty'),
});

export interface GateRequest {
  /** Suite to run. */
  readonly suite: string;
  /** Control-plane base URL, e.g. http://127.0.0.1:8080. */
  readonly baseUrl: string;
  /** Where the JSON and JUnit reports go. */
  readonly reportsDir: string;
}

export interface ValidRequest {
  readonly suite: SuiteName;
  readonly baseUrl: string;
  readonly reportsDir: string;
}

/** Validates a gate request; throws LoadGateError with one line on bad input. */
export function parseRequest(request: GateRequest): ValidRequest {
  const parsed = requestSchema.safeParse(request);
  if (!parsed.success) throw new LoadGateError(parsed.error.issues.map((i) => i.message).join('; '));
  return {
    suite: parsed.data.suite,
    baseUrl: parsed.data.baseUrl.replace(/\/+$/, ''),
    reportsDir: path.resolve(parsed.data.reportsDir),
  };
}

export function scriptPath(suite: SuiteName): string {
  return path.join(LOADTESTS_DIR, 'scripts', `${suite}.ts`);
}

/** The arguments of `k6 run` for a suite; the operator token travels in the environment, never in argv. */
export function k6Arguments(request: ValidRequest): string[] {
  return [
    'run',
    '--env',
    `BASE_URL=${request.baseUrl}`,
    '--env',
    `REPORT_DIR=${request.reportsDir}`,
    '--tag',
    `suite=${request.suite}`,
    scriptPath(request.suite),
  ];
}

/** Full path of an executable found on PATH, or undefined. */
export async function findOnPath(
  command: string,
  pathVariable: string | undefined,
): Promise<string | undefined> {
  for (const dir of (pathVariable ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return undefined;
}

/** An HS256 operator JWT (role operator) for the run, valid for two hours. */
export async function mintOperatorToken(secret: string): Promise<string> {
  return new SignJWT({ role: 'operator' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('load-gate')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(secret));
}

/** OPERATOR_TOKEN as given, or one minted from JWT_SECRET; throws LoadGateError when neither is set. */
export async function operatorToken(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.OPERATOR_TOKEN) return env.OPERATOR_TOKEN;
  if (env.JWT_SECRET) return mintOperatorToken(env.JWT_SECRET);
  throw new LoadGateError('set OPERATOR_TOKEN, or JWT_SECRET to mint an operator token');
}

/** The command line a CI job runs, for display (the token is in the environment, not here). */
export function k6CommandLine(request: ValidRequest): string {
  const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
  return ['k6', ...k6Arguments(request)].map(quote).join(' ');
}

export interface RunOptions {
  /** Environment of the k6 process; PATH is searched for k6. @default - process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Where the install hint goes when k6 is missing. @default - process.stderr */
  readonly stderr?: NodeJS.WritableStream;
  /** Where the verdict of an aborted run goes. @default - process.stdout */
  readonly stdout?: NodeJS.WritableStream;
  /** Names this run's tenants (`lg-<runId>-<role>`), passed to k6 as RUN_ID. @default - a new run id */
  readonly runId?: string;
}

/**
 * Runs the suite with k6 and returns k6's exit code (0 pass, 99 thresholds crossed, others as k6 says),
 * or EXIT_K6_MISSING after printing the install hint. Throws LoadGateError on bad input.
 */
export async function runLoadGate(request: GateRequest, options: RunOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const valid = parseRequest(request);
  const k6 = await findOnPath('k6', env.PATH);
  if (k6 === undefined) {
    (options.stderr ?? process.stderr).write(`${K6_INSTALL_HINT}\n`);
    return EXIT_K6_MISSING;
  }
  const token = await operatorToken(env);
  await mkdir(valid.reportsDir, { recursive: true });
  const log = pino({ name: 'load-gate' }, pino.destination(2));
  const runId = options.runId ?? newRunId();
  // k6 tears its tenants down itself; these two sweeps are the fallback for a run that k6 could not finish
  // (SIGKILL, OOM, a node lost): this run's tenants afterwards, stale ones of earlier runs beforehand.
  const retire = async (which: { runId?: string }) => {
    if (env.KEEP_TENANTS === '1') return;
    try {
      const retired = await retireSuiteTenants({ baseUrl: valid.baseUrl, operatorToken: token, ...which });
      if (retired.length > 0)
        log.warn({ retired }, 'suspended load-gate tenants left active by a run without teardown');
    } catch (error) {
      log.warn({ err: error }, 'could not check for left-over load-gate tenants');
    }
  };
  await retire({});
  log.info({ suite: valid.suite, baseUrl: valid.baseUrl, k6, reportsDir: valid.reportsDir }, 'running k6');
  // k6 runs in its own process group and gets exactly one signal, from the gate: a second signal makes k6
  // abort without summary or teardown (leaving the suite's tenant active), and a CI runner's SIGTERM to
  // the whole group, or Ctrl-C in a terminal, would otherwise reach k6 directly and once more through the gate.
  // The gate then waits for k6 to finish its graceful stop. Listen before spawning: k6 can be running
  // (and the job stopped) before spawn() returns.
  let forwarded: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    if (forwarded) {
      log.warn({ signal }, 'k6 is stopping: waiting for its summary and teardown');
      return;
    }
    forwarded = signal;
    log.warn({ signal }, 'stopping k6: it writes its summary and runs teardown');
    child.kill(signal);
  };
  const onTerm = () => forward('SIGTERM');
  const onInt = () => forward('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const child = spawn(k6, k6Arguments(valid), {
    // k6 passes its environment to the script as __ENV.
    env: { ...env, OPERATOR_TOKEN: token, RUN_ID: runId },
    stdio: 'inherit',
    detached: true,
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (exitCode, signal) => {
      if (exitCode !== null) resolve(exitCode);
      else resolve(128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  }).finally(() => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  });
  if (forwarded !== undefined || (code !== 0 && code !== K6_EXIT_THRESHOLDS_CROSSED)) {
    await markReportsAborted(valid, code, options.stdout ?? process.stdout);
  }
  await retire({ runId });
  log.info({ suite: valid.suite, exitCode: code, passed: code === 0 }, 'k6 finished');
  return code;
}

/**
 * Rewrites the suite's JSON and JUnit reports after a run k6 did not finish (a signal, or an exit code
 * other than 0 and 99), so they never say PASS; written even when k6 left no summary at all.
 */
async function markReportsAborted(
  request: ValidRequest,
  exitCode: number,
  stdout: NodeJS.WritableStream,
): Promise<void> {
  const paths = reportPaths(request.suite, request.reportsDir);
  const summary = await readFile(paths.json, 'utf8').catch(() => undefined);
  const reports = abortedReports(request.suite, summary, exitCode);
  await writeFile(paths.json, reports.json);
  await writeFile(paths.junit, reports.junit);
  stdout.write(reports.text.replace(/\n$/, `\n  reports: ${paths.json}, ${paths.junit}\n`));
}

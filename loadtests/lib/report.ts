// Turns k6's end-of-test summary data into the gate's reports: JSON, JUnit XML and a short text.
// Pure (no k6 or Node imports) so Node tests can feed it recorded summary data.
import { type JUnitCase, renderJUnit } from './junit.ts';

/** The parts of k6's handleSummary data (k6 v1 shape) the reports read. */
export interface SummaryData {
  readonly metrics?: Record<
    string,
    {
      readonly type?: string;
      readonly values?: Record<string, number>;
      readonly thresholds?: Record<string, { readonly ok: boolean }>;
    }
  >;
  readonly root_group?: SummaryGroup;
  readonly state?: { readonly testRunDurationMs?: number };
}

export interface SummaryGroup {
  readonly name?: string;
  readonly path?: string;
  readonly groups?: readonly SummaryGroup[];
  readonly checks?: readonly {
    readonly name: string;
    readonly path?: string;
    passes: number;
    fails: number;
  }[];
}

export interface ThresholdResult {
  /** Metric or sub-metric name, e.g. `http_req_duration` or `http_req_failed{tenant:acme}`. */
  readonly metric: string;
  /** Threshold expression, e.g. `p(95)<500`. */
  readonly expression: string;
  /** Whether the threshold held. */
  readonly ok: boolean;
}

export interface CheckResult {
  /** Check name, prefixed by its group path when inside a group. */
  readonly name: string;
  /** Times the check held. */
  readonly passes: number;
  /** Times the check failed. */
  readonly fails: number;
}

export interface GateResult {
  /** Suite name. */
  readonly suite: string;
  /** True when there were thresholds, every one held, and no check failed. */
  readonly passed: boolean;
  /** Run time, seconds. */
  readonly durationSeconds: number;
  /** Every threshold with its outcome. */
  readonly thresholds: readonly ThresholdResult[];
  /** Every check with its counts. */
  readonly checks: readonly CheckResult[];
  /** Headline figures, absent when the metric has no data. */
  readonly figures: {
    readonly requests?: number;
    readonly failedRate?: number;
    readonly p95Ms?: number;
    readonly checksRate?: number;
  };
}

function collectChecks(group: SummaryGroup | undefined, prefix: string, out: CheckResult[]): void {
  if (!group) return;
  for (const check of group.checks ?? []) {
    out.push({ name: `${prefix}${check.name}`, passes: check.passes, fails: check.fails });
  }
  for (const child of group.groups ?? []) collectChecks(child, `${prefix}${child.name ?? ''} / `, out);
}

/** Reads k6 summary data into the gate's result. */
export function gateResult(suite: string, data: SummaryData): GateResult {
  const metrics = data.metrics ?? {};
  const thresholds: ThresholdResult[] = [];
  for (const [metric, entry] of Object.entries(metrics)) {
    for (const [expression, outcome] of Object.entries(entry.thresholds ?? {})) {
      thresholds.push({ metric, expression, ok: outcome.ok });
    }
  }
  const checks: CheckResult[] = [];
  collectChecks(data.root_group, '', checks);
  const value = (metric: string, key: string) => metrics[metric]?.values?.[key];
  return {
    suite,
    // A run without thresholds proves nothing, so it does not pass.
    passed: thresholds.length > 0 && thresholds.every((t) => t.ok) && checks.every((c) => c.fails === 0),
    durationSeconds: (data.state?.testRunDurationMs ?? 0) / 1000,
    thresholds,
    checks,
    figures: {
      requests: value('http_reqs', 'count'),
      failedRate: value('http_req_failed', 'rate'),
      p95Ms: value('http_req_duration', 'p(95)'),
      checksRate: value('checks', 'rate'),
    },
  };
}

/** JUnit XML: one case per threshold and one per check. */
export function junitReport(result: GateResult): string {
  const cases: JUnitCase[] = [
    ...result.thresholds.map((t) => ({
      name: `threshold ${t.metric}: ${t.expression}`,
      ...(t.ok ? {} : { failure: `threshold crossed: ${t.metric} ${t.expression}` }),
    })),
    ...result.checks.map((c) => ({
      name: `check ${c.name}`,
      output: `${c.passes} passed, ${c.fails} failed`,
      ...(c.fails === 0 ? {} : { failure: `${c.fails} of ${c.passes + c.fails} failed` }),
    })),
  ];
  return renderJUnit([{ name: `load-gate.${result.suite}`, timeSeconds: result.durationSeconds, cases }]);
}

const fixed = (n: number | undefined, digits: number, unit = '') =>
  n === undefined ? 'no data' : `${n.toFixed(digits)}${unit}`;

/** A few lines for stdout: verdict, headline figures, and what failed. */
export function textReport(result: GateResult, reportPaths: readonly string[]): string {
  const f = result.figures;
  const lines = [
    `load-gate ${result.suite}: ${result.passed ? 'PASS' : 'FAIL'} in ${result.durationSeconds.toFixed(1)}s`,
    `  requests ${f.requests ?? 'no data'}, failed ${f.failedRate === undefined ? 'no data' : fixed(f.failedRate * 100, 2, '%')}, p95 ${fixed(f.p95Ms, 1, ' ms')}, checks ${f.checksRate === undefined ? 'no data' : fixed(f.checksRate * 100, 2, '%')}`,
  ];
  for (const t of result.thresholds) lines.push(`  ${t.ok ? 'ok  ' : 'FAIL'} ${t.metric}: ${t.expression}`);
  for (const c of result.checks.filter((check) => check.fails > 0)) {
    lines.push(`  FAIL check ${c.name}: ${c.fails} of ${c.passes + c.fails} failed`);
  }
  if (reportPaths.length > 0) lines.push(`  reports: ${reportPaths.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** Report file paths for a suite under a directory. */
export function reportPaths(suite: string, dir: string): { json: string; junit: string } {
  const base = dir.replace(/\/+$/, '') || '.';
  return { json: `${base}/${suite}-summary.json`, junit: `${base}/${suite}-junit.xml` };
}

/** The map k6's handleSummary returns: stdout text, JSON and JUnit files. */
export function summaryOutputs(suite: string, data: SummaryData, dir: string): Record<string, string> {
  const result = gateResult(suite, data);
  const paths = reportPaths(suite, dir);
  return {
    stdout: textReport(result, [paths.json, paths.junit]),
    [paths.json]: `${JSON.stringify({ result, k6: data }, null, 2)}\n`,
    [paths.junit]: junitReport(result),
  };
}

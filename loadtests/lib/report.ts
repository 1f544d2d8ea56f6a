// Turns k6's end-of-test summary data into the gate's reports: JSON, JUnit XML and a short text.
// Pure (no k6 or Node imports) so Node tests can feed it recorded summary data.
import { type JUnitCase, renderJUnit } from './junit.ts';

/** Trend statistics k6 computes for the summary; without `summaryTrendStats` it has no p(99). */
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

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
  /** True when there were thresholds, every one held, no check failed, and k6 was not aborted. */
  readonly passed: boolean;
  /** Present when k6 ended early (e.g. SIGTERM, exit 105): the run is not a pass whatever its summary says. */
  readonly aborted?: { readonly exitCode: number; readonly reason: string };
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
    readonly p99Ms?: number;
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

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Reads k6 summary data into the gate's result. */
export function gateResult(suite: string, data: SummaryData): GateResult {
  const metrics = data.metrics ?? {};
  const thresholds: ThresholdResult[] = [];
  for (const [metric, entry] of Object.entries(metrics)) {
    for (const [expression, outcome] of Object.entries(entry.thresholds ?? {})) {
      thresholds.push({ metric, expression, ok: outcome.ok });
    }
  }
  // k6 hands metrics and thresholds over as maps in no fixed order; reports must not change between runs.
  thresholds.sort((a, b) => compare(a.metric, b.metric) || compare(a.expression, b.expression));
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
      p99Ms: value('http_req_duration', 'p(99)'),
      checksRate: value('checks', 'rate'),
    },
  };
}

/** JUnit XML: one case per threshold and one per check, and one failed case when k6 was aborted. */
export function junitReport(result: GateResult): string {
  const cases: JUnitCase[] = [
    ...(result.aborted ? [{ name: 'k6 run completed', failure: result.aborted.reason }] : []),
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
    `load-gate ${result.suite}: ${result.aborted ? `ABORTED (${result.aborted.reason})` : result.passed ? 'PASS' : 'FAIL'} in ${result.durationSeconds.toFixed(1)}s`,
    `  requests ${f.requests ?? 'no data'}, failed ${f.failedRate === undefined ? 'no data' : fixed(f.failedRate * 100, 2, '%')}, p95 ${fixed(f.p95Ms, 1, ' ms')}, p99 ${fixed(f.p99Ms, 1, ' ms')}, checks ${f.checksRate === undefined ? 'no data' : fixed(f.checksRate * 100, 2, '%')}`,
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

/**
 * Every metric with every value k6 computed, one line each in k6's layout. handleSummary replaces k6's own
 * end-of-test summary, and k6's textSummary helper loads from the network at run time, so the gate prints
 * the same data itself.
 */
export function metricsSummary(data: SummaryData): string {
  const entries = Object.entries(data.metrics ?? {}).sort(([a], [b]) => compare(a, b));
  const width = Math.max(30, ...entries.map(([name]) => name.length + 4));
  const lines = entries.map(([name, metric]) => {
    const values = Object.entries(metric.values ?? {})
      .map(([key, v]) => `${key}=${Number.isInteger(v) ? v : Number(v.toFixed(4))}`)
      .join(' ');
    return `  ${`${name}`.padEnd(width, '.')}: ${values}`;
  });
  return `${['k6 end-of-test summary:', ...lines].join('\n')}\n`;
}

/**
 * The reports of a run k6 did not finish (exit code other than 0 and 99, e.g. 105 after SIGTERM), from the
 * JSON summary it wrote if any: never a pass, and they say so.
 */
export function abortedReports(
  suite: string,
  summaryJson: string | undefined,
  exitCode: number,
): { json: string; junit: string; text: string } {
  let data: SummaryData = {};
  try {
    if (summaryJson !== undefined) data = (JSON.parse(summaryJson) as { k6?: SummaryData }).k6 ?? {};
  } catch {
    // A summary cut short by the abort holds nothing to keep.
  }
  const result: GateResult = {
    ...gateResult(suite, data),
    passed: false,
    aborted: { exitCode, reason: `k6 run aborted (exit ${exitCode})` },
  };
  return {
    json: `${JSON.stringify({ result, k6: data }, null, 2)}\n`,
    junit: junitReport(result),
    text: textReport(result, []),
  };
}

/** The map k6's handleSummary returns: stdout text, JSON and JUnit files. */
export function summaryOutputs(suite: string, data: SummaryData, dir: string): Record<string, string> {
  const result = gateResult(suite, data);
  const paths = reportPaths(suite, dir);
  return {
    stdout: `${metricsSummary(data)}${textReport(result, [paths.json, paths.junit])}`,
    [paths.json]: `${JSON.stringify({ result, k6: data }, null, 2)}\n`,
    [paths.junit]: junitReport(result),
  };
}

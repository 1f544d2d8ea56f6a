import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Options, Scenario, Threshold } from 'k6/options';
import { describe, expect, test } from 'vitest';
import { formatSuitesTable, listSuites, SUITE_NAMES, SUITES, type SuiteName } from './suites.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

type MetricType = 'counter' | 'rate' | 'trend' | 'gauge';

// k6's built-in metrics, by what makes a script emit them.
const ALWAYS: Record<string, MetricType> = {
  iterations: 'counter',
  iteration_duration: 'trend',
  vus: 'gauge',
  vus_max: 'gauge',
  data_sent: 'counter',
  data_received: 'counter',
};
const HTTP: Record<string, MetricType> = {
  http_reqs: 'counter',
  http_req_failed: 'rate',
  http_req_duration: 'trend',
  http_req_blocked: 'trend',
  http_req_connecting: 'trend',
  http_req_tls_handshaking: 'trend',
  http_req_sending: 'trend',
  http_req_waiting: 'trend',
  http_req_receiving: 'trend',
};
const AGGREGATIONS: Record<MetricType, RegExp> = {
  counter: /^(count|rate)$/,
  rate: /^rate$/,
  trend: /^(avg|min|max|med|p\(\d+(\.\d+)?\))$/,
  gauge: /^value$/,
};
const EXPRESSION = /^(?<agg>[a-z]+|p\(\d+(?:\.\d+)?\))\s*(?:<=|>=|===|==|!=|<|>)\s*-?\d+(?:\.\d+)?$/;
const DURATION = /^(\d+(\.\d+)?(ms|s|m|h))+$/;

/** A script and every local module it imports, as source text. */
function sourcesOf(file: string, seen = new Map<string, string>()): Map<string, string> {
  if (seen.has(file)) return seen;
  const source = readFileSync(file, 'utf8');
  seen.set(file, source);
  for (const match of source.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
    sourcesOf(path.resolve(path.dirname(file), match[1]!), seen);
  }
  return seen;
}

/** Metrics a script really emits: built-ins it triggers and custom metrics it declares. */
function emittedMetrics(sources: readonly string[]): Map<string, MetricType> {
  const all = sources.join('\n');
  const emitted = new Map<string, MetricType>(Object.entries(ALWAYS));
  if (/from 'k6\/http'/.test(all)) for (const [name, type] of Object.entries(HTTP)) emitted.set(name, type);
  if (/\bcheck\(/.test(all) && /import \{[^}]*\bcheck\b[^}]*\} from 'k6'/.test(all))
    emitted.set('checks', 'rate');
  for (const m of all.matchAll(/new (Counter|Rate|Trend|Gauge)\('([a-z0-9_]+)'/g)) {
    emitted.set(m[2]!, m[1]!.toLowerCase() as MetricType);
  }
  return emitted;
}

/** Problems with a suite's thresholds against the metrics its script emits; empty when sound. */
function thresholdProblems(options: Options, emitted: Map<string, MetricType>): string[] {
  const problems: string[] = [];
  for (const [key, list] of Object.entries(options.thresholds ?? {})) {
    const metric = /^([a-z0-9_]+)(\{[a-z_]+:[^{}]+\})?$/.exec(key)?.[1];
    const type = metric === undefined ? undefined : emitted.get(metric);
    if (type === undefined) {
      problems.push(`threshold '${key}' names a metric the script does not emit`);
      continue;
    }
    if (list.length === 0) problems.push(`threshold '${key}' has no expression`);
    for (const threshold of list as Threshold[]) {
      const expression = typeof threshold === 'string' ? threshold : threshold.threshold;
      const agg = EXPRESSION.exec(expression)?.groups?.agg;
      if (agg === undefined) problems.push(`'${key}': '${expression}' is not a threshold expression`);
      else if (!AGGREGATIONS[type].test(agg)) problems.push(`'${key}': '${agg}' does not apply to a ${type}`);
      if (typeof threshold !== 'string' && threshold.delayAbortEval !== undefined) {
        if (!DURATION.test(threshold.delayAbortEval)) {
          problems.push(`'${key}': delayAbortEval '${threshold.delayAbortEval}' is not a duration`);
        }
        if (!threshold.abortOnFail)
          problems.push(`'${key}': delayAbortEval without abortOnFail does nothing`);
      }
    }
  }
  return problems;
}

function seconds(duration: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

function peakVus(scenario: Scenario): number {
  switch (scenario.executor) {
    case 'ramping-vus':
      return Math.max(scenario.startVUs ?? 1, ...scenario.stages.map((s) => s.target));
    case 'constant-arrival-rate':
    case 'ramping-arrival-rate':
      return scenario.maxVUs ?? scenario.preAllocatedVUs;
    default:
      return scenario.vus ?? 1;
  }
}

function runSeconds(scenario: Scenario): number {
  switch (scenario.executor) {
    case 'ramping-vus':
    case 'ramping-arrival-rate':
      return scenario.stages.reduce((sum, s) => sum + seconds(s.duration), 0);
    case 'constant-vus':
    case 'constant-arrival-rate':
      return seconds(scenario.duration);
    default:
      // Iteration-bound executors have no planned length, only a cap.
      return 0;
  }
}

const script = (suite: SuiteName) => path.join(HERE, 'scripts', `${suite}.ts`);

describe.each(SUITE_NAMES)('suite %s', (suite) => {
  const definition = SUITES[suite];
  const sources = [...sourcesOf(script(suite)).values()];
  const scriptSource = sources[0]!;
  const emitted = emittedMetrics(sources);

  test('every threshold names a metric the script emits, with an aggregation that fits it', () => {
    expect(thresholdProblems(definition.options, emitted)).toEqual([]);
  });

  test('the gate set is there: p95 latency, error rate, checks rate and a request floor', () => {
    const thresholds = definition.options.thresholds ?? {};
    const expressions = (key: string) =>
      (thresholds[key] ?? []).map((t) => (typeof t === 'string' ? t : t.threshold));
    expect(expressions('http_req_duration').some((e) => e.startsWith('p(95)<'))).toBe(true);
    expect(expressions('http_req_failed').some((e) => /^rate(<|==)/.test(e))).toBe(true);
    expect(expressions('checks').some((e) => /^rate(>|==)/.test(e))).toBe(true);
    const floor = expressions('http_reqs').find((e) => /^count>\d+$/.test(e));
    expect(floor, 'http_reqs count floor').toBeDefined();
    expect(Number(floor!.slice('count>'.length))).toBeGreaterThan(definition.tenants * 2);
  });

  test('the script takes its options and summary from this suite and exports every scenario function', () => {
    expect(scriptSource).toContain(`export const options = suiteOptions('${suite}');`);
    expect(scriptSource).toContain(`export const handleSummary = summaryHandler('${suite}');`);
    expect(scriptSource).toMatch(/export function setup\(/);
    for (const [name, scenario] of Object.entries(definition.options.scenarios)) {
      const exec = scenario.exec ?? 'default';
      expect(scriptSource, `scenario ${name} runs ${exec}`).toMatch(new RegExp(`export function ${exec}\\(`));
    }
  });

  test('scenarios are well formed and agree with the listed VUs and duration', () => {
    const scenarios = Object.values(definition.options.scenarios);
    expect(scenarios.length).toBeGreaterThan(0);
    for (const scenario of scenarios) {
      expect(peakVus(scenario)).toBeGreaterThan(0);
      for (const d of [scenario.gracefulStop, 'maxDuration' in scenario ? scenario.maxDuration : undefined]) {
        if (d !== undefined) expect(d).toMatch(DURATION);
      }
    }
    expect(scenarios.reduce((sum, s) => sum + peakVus(s), 0)).toBe(definition.vus);
    expect(Math.max(...scenarios.map(runSeconds))).toBe(seconds(definition.duration));
    expect(definition.options.setupTimeout).toMatch(DURATION);
    expect(seconds(definition.options.setupTimeout!)).toBeGreaterThan(60);
    expect(definition.maxParallelism).toBeGreaterThanOrEqual(1);
    expect(definition.maxParallelism).toBeLessThanOrEqual(definition.vus);
  });
});

describe('the threshold check itself', () => {
  const emitted = emittedMetrics([
    "import http from 'k6/http';\nimport { check } from 'k6';\nconst late = new Trend('task_latency');\ncheck(1, {});",
  ]);

  test('accepts built-in HTTP metrics, checks, sub-metrics and declared custom metrics', () => {
    const options: Options = {
      thresholds: {
        http_req_duration: ['p(99.9)<900'],
        'http_req_failed{tenant:acme}': ['rate==0'],
        checks: ['rate>0.99'],
        task_latency: [{ threshold: 'avg<100', abortOnFail: true, delayAbortEval: '1m30s' }],
      },
    };
    expect(thresholdProblems(options, emitted)).toEqual([]);
  });

  test('flags misspelled or undeclared metrics, wrong aggregations and bad expressions', () => {
    const options: Options = {
      thresholds: {
        http_req_duraton: ['p(95)<500'],
        isolation_breaches: ['count==0'],
        http_req_failed: ['p(95)<1'],
        http_reqs: ['count more than 5'],
        checks: [{ threshold: 'rate>0.9', delayAbortEval: '10s' }],
      },
    };
    expect(thresholdProblems(options, emitted)).toEqual([
      "threshold 'http_req_duraton' names a metric the script does not emit",
      "threshold 'isolation_breaches' names a metric the script does not emit",
      "'http_req_failed': 'p(95)' does not apply to a rate",
      "'http_reqs': 'count more than 5' is not a threshold expression",
      "'checks': delayAbortEval without abortOnFail does nothing",
    ]);
  });

  test('a script without k6/http emits no HTTP metrics', () => {
    expect(emittedMetrics(["import { sleep } from 'k6';"]).has('http_reqs')).toBe(false);
  });
});

describe('suite listing for the README', () => {
  test('lists every suite with VUs, duration and thresholds', () => {
    const listing = listSuites();
    expect(listing.map((s) => s.name)).toEqual([...SUITE_NAMES]);
    const peak = listing.find((s) => s.name === 'peak')!;
    expect(peak.vus).toBe(50);
    expect(peak.thresholds).toContain('http_req_failed: rate<0.2 (abort on fail after 15s)');
    expect(listing.find((s) => s.name === 'smoke')!.vus).toBe(1);
    expect(listing.find((s) => s.name === 'load')!.vus).toBe(10);
  });

  test('loadtests/README.md shows the current table (ignoring the formatter padding)', () => {
    const plain = (text: string) => text.replace(/ *\| */g, '|').replace(/-{3,}/g, '---');
    expect(plain(readFileSync(path.join(HERE, 'README.md'), 'utf8'))).toContain(plain(formatSuitesTable()));
  });

  test('the Markdown table has a header and one row per suite', () => {
    const lines = formatSuitesTable().split('\n');
    expect(lines[0]).toBe('| suite | VUs | duration | what it proves | thresholds |');
    expect(lines).toHaveLength(2 + SUITE_NAMES.length);
    expect(lines[5]).toMatch(/^\| ratelimit \| 2 \| 30s \|/);
  });
});

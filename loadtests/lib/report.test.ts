import { describe, expect, test } from 'vitest';
import { SUITE_NAMES, suiteOptions } from '../suites.ts';
import { escapeXml, renderJUnit } from './junit.ts';
import {
  abortedReports,
  type GateResult,
  gateResult,
  junitReport,
  SUMMARY_TREND_STATS,
  type SummaryData,
  summaryOutputs,
  textReport,
} from './report.ts';

// Shaped like k6 v1 handleSummary data: metrics with thresholds, checks in the root group and a sub-group.
const crossed: SummaryData = {
  state: { testRunDurationMs: 61_500 },
  metrics: {
    http_reqs: {
      type: 'counter',
      values: { count: 2400, rate: 39.9 },
      thresholds: { 'count>600': { ok: true } },
    },
    http_req_duration: {
      type: 'trend',
      values: { avg: 120, 'p(95)': 612.5 },
      thresholds: { 'p(95)<500': { ok: false }, 'p(99)<1500': { ok: true } },
    },
    http_req_failed: { type: 'rate', values: { rate: 0.004 }, thresholds: { 'rate<0.01': { ok: true } } },
    checks: { type: 'rate', values: { rate: 0.998 } },
  },
  root_group: {
    name: '',
    checks: [{ name: 'me: 200 with own id', passes: 600, fails: 0 }],
    groups: [{ name: 'admission', checks: [{ name: 'release "own" <task>', passes: 595, fails: 5 }] }],
  },
};

const held: SummaryData = {
  state: { testRunDurationMs: 30_000 },
  metrics: {
    http_reqs: { type: 'counter', values: { count: 120 }, thresholds: { 'count>40': { ok: true } } },
  },
  root_group: { name: '', checks: [{ name: 'me: 200 with own id', passes: 30, fails: 0 }] },
};

describe('gateResult', () => {
  test('fails when one threshold is crossed, and lists every threshold and check', () => {
    const result = gateResult('load', crossed);
    expect(result.passed).toBe(false);
    expect(result.durationSeconds).toBe(61.5);
    expect(result.thresholds).toContainEqual({
      metric: 'http_req_duration',
      expression: 'p(95)<500',
      ok: false,
    });
    expect(result.thresholds).toHaveLength(4);
    expect(result.checks).toContainEqual({ name: 'admission / release "own" <task>', passes: 595, fails: 5 });
    expect(result.figures).toEqual({ requests: 2400, failedRate: 0.004, p95Ms: 612.5, checksRate: 0.998 });
  });

  test('passes when every threshold holds and no check failed', () => {
    expect(gateResult('smoke', held).passed).toBe(true);
  });

  test('does not pass a run without thresholds', () => {
    expect(gateResult('smoke', { metrics: {}, root_group: { checks: [] } }).passed).toBe(false);
  });

  test('fails on a failed check even when thresholds hold', () => {
    const data: SummaryData = { ...held, root_group: { checks: [{ name: 'x', passes: 1, fails: 1 }] } };
    expect(gateResult('smoke', data).passed).toBe(false);
  });
});

describe('junitReport', () => {
  test('one case per threshold and check, failures counted, expressions escaped', () => {
    const xml = junitReport(gateResult('load', crossed));
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites tests="6" failures="2"/);
    expect(xml).toContain(
      '<testsuite name="load-gate.load" tests="6" failures="2" errors="0" skipped="0" time="61.500">',
    );
    expect(xml).toContain('name="threshold http_req_duration: p(95)&lt;500"');
    expect(xml).toContain(
      '<failure message="threshold crossed: http_req_duration p(95)&lt;500" type="threshold"/>',
    );
    expect(xml).toContain('name="check admission / release &quot;own&quot; &lt;task&gt;"');
    expect(xml).toContain('<failure message="5 of 600 failed" type="threshold"/>');
    expect(xml).toContain('<testcase classname="load-gate.load" name="threshold http_reqs: count&gt;600"/>');
    expect(xml.match(/<testcase /g)).toHaveLength(6);
    expect(xml.match(/<failure /g)).toHaveLength(2);
  });

  test('escapeXml drops characters XML cannot carry', () => {
    expect(escapeXml('a\u0000b\u0007c & d')).toBe('abc &amp; d');
  });

  test('renderJUnit totals several suites', () => {
    const xml = renderJUnit([
      { name: 'one', timeSeconds: 1, cases: [{ name: 'a' }] },
      {
        name: 'two',
        timeSeconds: 2.25,
        cases: [
          { name: 'b', failure: 'no' },
          { name: 'c', output: 'ok' },
        ],
      },
    ]);
    expect(xml).toContain('<testsuites tests="3" failures="1" errors="0" time="3.250">');
    expect(xml).toContain('<system-out>ok</system-out>');
  });
});

describe('textReport and summaryOutputs', () => {
  test('the text names the verdict, the figures and what failed', () => {
    const text = textReport(gateResult('load', crossed), ['reports/load-summary.json']);
    expect(text.split('\n')[0]).toBe('load-gate load: FAIL in 61.5s');
    expect(text).toContain('requests 2400, failed 0.40%, p95 612.5 ms, p99 no data, checks 99.80%');
    expect(text).toContain('FAIL http_req_duration: p(95)<500');
    expect(text).toContain('ok   http_reqs: count>600');
    expect(text).toContain('FAIL check admission / release "own" <task>: 5 of 600 failed');
    expect(text).toContain('reports: reports/load-summary.json');
  });

  test('says "no data" rather than zero for a metric without samples', () => {
    expect(textReport(gateResult('smoke', held), [])).toContain('failed no data, p95 no data');
  });

  test('writes stdout, the JSON summary and the JUnit file under the report directory', () => {
    const outputs = summaryOutputs('smoke', held, '/tmp/reports/');
    expect(Object.keys(outputs).sort()).toEqual([
      '/tmp/reports/smoke-junit.xml',
      '/tmp/reports/smoke-summary.json',
      'stdout',
    ]);
    const json = JSON.parse(outputs['/tmp/reports/smoke-summary.json']!);
    expect(json.result.passed).toBe(true);
    expect(json.k6.metrics.http_reqs.values.count).toBe(120);
    expect(outputs.stdout).toMatch(/^k6 end-of-test summary:\n[\s\S]*\nload-gate smoke: PASS in 30\.0s/);
  });
});

describe('reports of an aborted run and their order', () => {
  test('a run k6 aborted (exit 105) is not a pass, even when its summary says every threshold held', () => {
    const outputs = summaryOutputs('smoke', held, '/tmp/r');
    const aborted = abortedReports('smoke', outputs['/tmp/r/smoke-summary.json'], 105);
    const json = JSON.parse(aborted.json) as { result: GateResult };
    expect(json.result.passed).toBe(false);
    expect(json.result.aborted).toEqual({ exitCode: 105, reason: 'k6 run aborted (exit 105)' });
    expect(aborted.junit).toMatch(/failures="1"/);
    expect(aborted.junit).toContain('k6 run aborted (exit 105)');
    expect(aborted.text).toMatch(/^load-gate smoke: ABORTED/);
  });

  test('with no summary at all (a hard abort) the reports still say aborted', () => {
    const aborted = abortedReports('smoke', undefined, 143);
    const json = JSON.parse(aborted.json) as { result: GateResult };
    expect(json.result.passed).toBe(false);
    expect(json.result.aborted?.exitCode).toBe(143);
    expect(aborted.junit).toContain('k6 run aborted (exit 143)');
  });

  test('thresholds come out in one order whatever order k6 gives them', () => {
    const reversed: SummaryData = {
      ...crossed,
      metrics: Object.fromEntries(
        Object.entries(crossed.metrics!)
          .reverse()
          .map(([name, m]) => [
            name,
            { ...m, thresholds: m.thresholds && Object.fromEntries(Object.entries(m.thresholds).reverse()) },
          ]),
      ),
    };
    expect(junitReport(gateResult('load', reversed))).toBe(junitReport(gateResult('load', crossed)));
    expect(gateResult('load', crossed).thresholds.map((t) => `${t.metric} ${t.expression}`)).toEqual([
      'http_req_duration p(95)<500',
      'http_req_duration p(99)<1500',
      'http_req_failed rate<0.01',
      'http_reqs count>600',
    ]);
  });

  test('p99 is a headline figure and stdout carries every metric, as the end-of-test summary does', () => {
    const data: SummaryData = {
      ...crossed,
      metrics: {
        ...crossed.metrics,
        http_req_duration: {
          ...crossed.metrics!.http_req_duration!,
          values: { avg: 120, 'p(95)': 612.5, 'p(99)': 980.25 },
        },
      },
    };
    expect(gateResult('load', data).figures.p99Ms).toBe(980.25);
    const stdout = summaryOutputs('load', data, '/tmp/r').stdout!;
    expect(stdout).toContain('p99 980.3 ms');
    for (const metric of Object.keys(data.metrics!)) expect(stdout).toContain(metric);
    expect(stdout).toMatch(/http_req_duration\.+: avg=120 p\(95\)=612\.5 p\(99\)=980\.25/);
  });

  test('every suite asks k6 for p(99) in its summary', () => {
    for (const name of SUITE_NAMES) expect(suiteOptions(name).summaryTrendStats).toContain('p(99)');
    expect(SUMMARY_TREND_STATS).toContain('p(99)');
  });
});

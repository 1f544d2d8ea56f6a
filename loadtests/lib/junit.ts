// A small JUnit XML writer, k6-free and Node-free, so k6's handleSummary and the Node tests share it.

export interface JUnitCase {
  /** Test case name as CI shows it. */
  readonly name: string;
  /** Failure message; absent when the case passed. */
  readonly failure?: string;
  /** Extra detail shown under the case (values measured). */
  readonly output?: string;
}

export interface JUnitSuite {
  /** Suite name, e.g. `load-gate.smoke`. */
  readonly name: string;
  /** Run time of the suite in seconds. */
  readonly timeSeconds: number;
  /** The cases, in report order. */
  readonly cases: readonly JUnitCase[];
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Escapes text for an XML attribute or text node, dropping characters XML 1.0 cannot carry. */
export function escapeXml(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/g, '')
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/** Renders suites as one JUnit XML document. */
export function renderJUnit(suites: readonly JUnitSuite[]): string {
  const count = (s: JUnitSuite) => s.cases.length;
  const failures = (s: JUnitSuite) => s.cases.filter((c) => c.failure !== undefined).length;
  const total = suites.reduce((n, s) => n + count(s), 0);
  const failed = suites.reduce((n, s) => n + failures(s), 0);
  const time = suites.reduce((n, s) => n + s.timeSeconds, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${total}" failures="${failed}" errors="0" time="${time.toFixed(3)}">`,
  ];
  for (const suite of suites) {
    lines.push(
      `  <testsuite name="${escapeXml(suite.name)}" tests="${count(suite)}" failures="${failures(suite)}" errors="0" skipped="0" time="${suite.timeSeconds.toFixed(3)}">`,
    );
    for (const c of suite.cases) {
      const open = `    <testcase classname="${escapeXml(suite.name)}" name="${escapeXml(c.name)}"`;
      if (c.failure === undefined && c.output === undefined) {
        lines.push(`${open}/>`);
        continue;
      }
      lines.push(`${open}>`);
      if (c.failure !== undefined) {
        lines.push(`      <failure message="${escapeXml(c.failure)}" type="threshold"/>`);
      }
      if (c.output !== undefined) lines.push(`      <system-out>${escapeXml(c.output)}</system-out>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

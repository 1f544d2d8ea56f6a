import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { DrillName } from './options.ts';

/** One step of the drill timeline. */
export interface TimelineEvent {
  readonly at: string;
  /** Milliseconds since the drill started. */
  readonly elapsedMs: number;
  readonly step: string;
  readonly detail?: string;
}

/** A pass/fail assertion of the drill; each becomes a JUnit test case. */
export interface DrillCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}

/** The JSON report written by every drill. */
export interface DrillReport {
  readonly drill: DrillName;
  readonly env: string;
  readonly runId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly passed: boolean;
  /** One line when the drill stopped early (error or interruption). */
  readonly error?: string;
  readonly interrupted: boolean;
  readonly targets: { readonly rtoSeconds?: number; readonly rpoSeconds?: number };
  readonly measurements: { readonly rtoSeconds?: number; readonly rpoSeconds?: number } & Record<
    string,
    unknown
  >;
  readonly checks: readonly DrillCheck[];
  readonly timeline: readonly TimelineEvent[];
  readonly cleanup: { readonly deleted: readonly string[]; readonly failed: readonly string[] };
  readonly notes: readonly string[];
}

/** Collects the timeline, checks and notes of one run, logging each step as it happens. */
export class DrillRecorder {
  readonly startedAt = new Date();
  readonly timeline: TimelineEvent[] = [];
  readonly checks: DrillCheck[] = [];
  readonly notes: string[] = [];
  readonly measurements: Record<string, unknown> = {};

  constructor(
    private readonly log: Logger,
    private readonly progress: (line: string) => void = () => {},
  ) {}

  step(step: string, detail?: string): void {
    const now = new Date();
    const event: TimelineEvent = {
      at: now.toISOString(),
      elapsedMs: now.getTime() - this.startedAt.getTime(),
      step,
      ...(detail === undefined ? {} : { detail }),
    };
    this.timeline.push(event);
    this.log.info({ step, detail }, step);
    this.progress(formatEvent(event));
  }

  check(name: string, passed: boolean, detail: string): void {
    this.checks.push({ name, passed, detail });
    this.step(`check ${passed ? 'passed' : 'FAILED'}: ${name}`, detail);
  }

  note(text: string): void {
    this.notes.push(text);
    this.log.info({ note: text }, 'note');
  }
}

function formatEvent(event: TimelineEvent): string {
  const seconds = (event.elapsedMs / 1000).toFixed(1).padStart(7);
  return `+${seconds}s  ${event.step}${event.detail ? `: ${event.detail}` : ''}`;
}

/** The human summary: verdict, measurements against targets, timeline, checks, cleanup, notes. */
export function formatSummary(report: DrillReport): string {
  const lines = [
    `dr-drill ${report.drill} on ${report.env} (run ${report.runId}): ${report.passed ? 'PASSED' : 'FAILED'}`,
    `  started ${report.startedAt}, took ${(report.durationMs / 1000).toFixed(1)} s`,
  ];
  if (report.error) lines.push(`  error: ${report.error}`);
  const { rtoSeconds, rpoSeconds } = report.measurements;
  if (report.targets.rtoSeconds !== undefined) {
    lines.push(
      `  RTO: ${rtoSeconds === undefined ? 'not measured' : `${rtoSeconds.toFixed(1)} s`} (target <= ${report.targets.rtoSeconds} s)`,
    );
  }
  if (report.targets.rpoSeconds !== undefined) {
    lines.push(
      `  RPO: ${rpoSeconds === undefined ? 'not measured' : `${rpoSeconds.toFixed(1)} s`} (target <= ${report.targets.rpoSeconds} s)`,
    );
  }
  lines.push('timeline:');
  for (const event of report.timeline) lines.push(`  ${formatEvent(event)}`);
  lines.push('checks:');
  for (const check of report.checks)
    lines.push(`  [${check.passed ? 'pass' : 'FAIL'}] ${check.name}: ${check.detail}`);
  if (report.checks.length === 0) lines.push('  (none ran)');
  lines.push(
    `cleanup: ${report.cleanup.deleted.length} deleted${report.cleanup.deleted.length ? ` (${report.cleanup.deleted.join(', ')})` : ''}, ${report.cleanup.failed.length} failed${report.cleanup.failed.length ? ` (${report.cleanup.failed.join(', ')})` : ''}`,
  );
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JUnit XML: one test case per check, plus one for the run itself when it stopped with an error or left leftovers. */
export function toJunit(report: DrillReport): string {
  const cases = report.checks.map((c) => ({ name: c.name, failure: c.passed ? undefined : c.detail }));
  if (report.error) cases.push({ name: 'drill completed', failure: report.error });
  if (report.cleanup.failed.length > 0) {
    cases.push({ name: 'cleanup', failure: `not deleted: ${report.cleanup.failed.join(', ')}` });
  }
  const failures = cases.filter((c) => c.failure !== undefined).length;
  const suite = `dr-drill.${report.drill}.${report.env}`;
  const body = cases
    .map((c) =>
      c.failure === undefined
        ? `    <testcase classname="${xml(suite)}" name="${xml(c.name)}"/>`
        : `    <testcase classname="${xml(suite)}" name="${xml(c.name)}">\n      <failure message="${xml(c.failure)}"/>\n    </testcase>`,
    )
    .join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${cases.length}" failures="${failures}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${xml(suite)}" tests="${cases.length}" failures="${failures}" timestamp="${report.startedAt}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    body,
    `    <system-out>${xml(formatSummary(report))}</system-out>`,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export async function writeReportFiles(
  report: DrillReport,
  jsonPath: string,
  junitPath: string,
): Promise<void> {
  await mkdir(dirname(jsonPath), { recursive: true });
  await mkdir(dirname(junitPath), { recursive: true });
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(junitPath, toJunit(report));
}

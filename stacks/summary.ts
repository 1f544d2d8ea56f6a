import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import { type SynthResult, synthesizeEnvironment } from './synth.ts';

/** CDK's version-reporting resource is bookkeeping, not infrastructure. */
const NOT_COUNTED = new Set(['AWS::CDK::Metadata']);

/** One stack of one environment, with its resources counted by CloudFormation type. */
export interface StackSummary {
  readonly env: EnvironmentName;
  readonly stack: string;
  readonly resources: number;
  readonly byType: Record<string, number>;
}

/** Counts the resources of every stack one synth produced. */
export function summarize(result: SynthResult): StackSummary[] {
  return result.stacks.map(({ stackName, templateFile }) => {
    const template = JSON.parse(readFileSync(templateFile, 'utf8')) as {
      Resources?: Record<string, { Type: string }>;
    };
    const byType: Record<string, number> = {};
    for (const { Type } of Object.values(template.Resources ?? {})) {
      if (!NOT_COUNTED.has(Type)) byType[Type] = (byType[Type] ?? 0) + 1;
    }
    const resources = Object.values(byType).reduce((a, b) => a + b, 0);
    return { env: result.env, stack: stackName, resources, byType };
  });
}

/**
 * Synthesizes every environment (in a temporary directory, removed afterwards) and counts resources per stack.
 * Throws if any environment has a cdk-nag or required-tags finding, since such an app would not deploy.
 */
export async function synthesizeAll(): Promise<StackSummary[]> {
  const root = mkdtempSync(path.join(tmpdir(), 'agent-platform-summary-'));
  try {
    return ENVIRONMENT_NAMES.flatMap((env) => {
      const result = synthesizeEnvironment(env, path.join(root, env));
      if (result.findings.length > 0) {
        const first = result.findings[0]!;
        throw new Error(
          `${env}: ${result.findings.length} validation finding(s), first ${first.rule} at ${first.path}`,
        );
      }
      return summarize(result);
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A plain-text table of the summary: one row per stack, plus a total per environment. */
export function formatSummary(rows: readonly StackSummary[]): string {
  const lines: string[][] = [['env', 'stack', 'resources']];
  for (const env of ENVIRONMENT_NAMES) {
    const own = rows.filter((r) => r.env === env);
    if (own.length === 0) continue;
    for (const r of own) lines.push([env, r.stack, String(r.resources)]);
    lines.push([env, 'total', String(own.reduce((a, r) => a + r.resources, 0))]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) => l.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

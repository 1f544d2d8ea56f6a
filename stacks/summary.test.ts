import { readFileSync } from 'node:fs';
import { beforeAll, expect, test } from 'vitest';
import type { EnvironmentName } from '../config/environments.ts';
import { formatSummary, summarize } from './summary.ts';
import type { SynthResult } from './synth.ts';
import { synthesizedAll } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

test('counts every resource of every stack except CDK bookkeeping', () => {
  const rows = summarize(synth.prod);
  expect(rows.map((r) => r.stack)).toEqual(synth.prod.stacks.map((s) => s.stackName));
  for (const row of rows) {
    const file = synth.prod.stacks.find((s) => s.stackName === row.stack)!.templateFile;
    const types = Object.values(
      JSON.parse(readFileSync(file, 'utf8')).Resources as Record<string, { Type: string }>,
    )
      .map((r) => r.Type)
      .filter((t) => t !== 'AWS::CDK::Metadata');
    expect(row.resources).toBe(types.length);
    expect(Object.values(row.byType).reduce((a, b) => a + b, 0)).toBe(types.length);
  }
  expect(rows.find((r) => r.stack.endsWith('-Network'))!.byType['AWS::EC2::NatGateway']).toBe(3);
});

test('formats one row per stack and a total per environment', () => {
  const rows = [...summarize(synth.dev), ...summarize(synth.prod)];
  const lines = formatSummary(rows).split('\n');
  expect(lines[0]).toMatch(/^env\s+stack\s+resources$/);
  expect(lines).toHaveLength(1 + rows.length + 2);
  const total = rows.filter((r) => r.env === 'prod').reduce((a, r) => a + r.resources, 0);
  expect(lines.at(-1)).toMatch(new RegExp(`^prod\\s+total\\s+${total}$`));
});

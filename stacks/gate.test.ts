import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import { GATED_PLUGINS, type SynthResult } from './synth.ts';
import { synthesizedAll } from './testing/templates.ts';

const run = promisify(execFile);

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

describe.each(ENVIRONMENT_NAMES)('policy gate in %s', (env) => {
  test('AwsSolutions and Platform (required tags) checks leave no unacknowledged finding', () => {
    const gated = synth[env].findings.filter((f) => (GATED_PLUGINS as readonly string[]).includes(f.plugin));
    expect(gated.map((f) => `${f.rule} at ${f.path}`)).toEqual([]);
  });

  test("CDK's own CloudFormation validation leaves no finding either", () => {
    expect(synth[env].findings).toEqual([]);
  });

  test('every acknowledgement gives a reason and sits on a resource, not on a stack or the app', () => {
    const acks = synth[env].acknowledgements;
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.reason.length, ack.id).toBeGreaterThan(30);
      expect(ack.path.split('/').length, `${ack.id} on ${ack.path}`).toBeGreaterThan(1);
    }
  });

  test('needs no context look-up, so synth works without AWS credentials or network', () => {
    expect(synth[env].missingContext).toEqual([]);
  });
});

test('cfn-lint finds no error or warning in any template of any environment (W3005 ignored)', async () => {
  const files = ENVIRONMENT_NAMES.flatMap((env) => synth[env].stacks.map((s) => s.templateFile));
  // Seven core stacks per environment, plus the optional ones (GitHub roles) where the config asks for them.
  expect(files.length).toBeGreaterThanOrEqual(ENVIRONMENT_NAMES.length * 7);
  // Exit code is a bitmask: 2 errors, 4 warnings, 8 informational.
  const result = await run('cfn-lint', ['--ignore-checks', 'W3005', '--', ...files]).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
  expect(result.out).toBe('');
  expect(result.code & 6).toBe(0);
}, 180_000);

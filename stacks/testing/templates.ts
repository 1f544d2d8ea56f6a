import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Template } from 'aws-cdk-lib/assertions';
import { inject } from 'vitest';
import {
  type DeployTarget,
  ENVIRONMENT_NAMES,
  type EnvironmentConfig,
  type EnvironmentName,
  loadEnvironmentConfig,
} from '../../config/environments.ts';
import { type SynthResult, synthesizeEnvironment } from '../synth.ts';

const WAIT_LIMIT_MS = 400_000;

/**
 * Each environment is synthesized for a different target, so the assertions prove that nothing is pinned to
 * the shipped account or region: dev keeps the offline placeholder, staging gets an account from context,
 * prod an account and another region (the `cdk synth -c account=... -c region=...` path).
 */
export const FIXTURE_TARGETS: Record<EnvironmentName, DeployTarget> = {
  dev: {},
  staging: { account: '444455556666' },
  prod: {
    account: '111122223333',
    region: 'eu-west-1',
    adminPrincipalArns: [
      'arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_PlatformAdmin_0123456789abcdef',
      'arn:aws:iam::111122223333:role/break-glass',
    ],
  },
};

/** The config the fixture synthesized one environment from. */
export function fixtureConfig(env: EnvironmentName): EnvironmentConfig {
  return loadEnvironmentConfig(env, FIXTURE_TARGETS[env]);
}

/** Synth must not depend on credentials: every AWS_* variable is dropped before the app is built. */
function withoutAwsEnvironment<T>(run: () => T): T {
  const saved = Object.entries(process.env).filter(([key]) => key.startsWith('AWS_'));
  for (const [key] of saved) delete process.env[key];
  try {
    return run();
  } finally {
    for (const [key, value] of saved) process.env[key] = value;
  }
}

/**
 * Synthesizes every environment once per test run, shared by all test files and workers: a worker takes an
 * environment by creating its lock directory, the others read the result file when it appears.
 */
export async function synthesizedAll(): Promise<Record<EnvironmentName, SynthResult>> {
  const root = inject('stacksSynthDir');
  for (const env of ENVIRONMENT_NAMES) {
    const dir = path.join(root, env);
    try {
      mkdirSync(dir);
    } catch {
      continue;
    }
    const result = withoutAwsEnvironment(() =>
      synthesizeEnvironment(env, path.join(dir, 'out'), FIXTURE_TARGETS[env]),
    );
    writeFileSync(path.join(dir, 'result.json'), JSON.stringify(result));
  }
  const results = {} as Record<EnvironmentName, SynthResult>;
  for (const env of ENVIRONMENT_NAMES) {
    const file = path.join(root, env, 'result.json');
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (!existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`synth of ${env} did not finish within ${WAIT_LIMIT_MS} ms`);
      await sleep(200);
    }
    results[env] = JSON.parse(readFileSync(file, 'utf8')) as SynthResult;
  }
  return results;
}

/** The synthesized template of one stack part (`Network`, `Data`...) of one environment. */
export function templateOf(result: SynthResult, part: string): Template {
  const stack = result.stacks.find((s) => s.stackName.endsWith(`-${part}`));
  if (!stack) throw new Error(`no ${part} stack in ${result.env}`);
  return Template.fromJSON(JSON.parse(readFileSync(stack.templateFile, 'utf8')));
}

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName, PLACEHOLDER_ACCOUNT } from '../config/environments.ts';
import type { SynthResult } from './synth.ts';
import { FIXTURE_TARGETS, fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

const PARTS = ['Network', 'Cluster', 'Data', 'Cache', 'Observability', 'Cost', 'Workloads'];

describe.each(ENVIRONMENT_NAMES)('deploy target of %s', (env) => {
  const config = fixtureConfig(env);

  test('the cloud assembly names exactly the target account and region for every stack', () => {
    const manifest = JSON.parse(readFileSync(path.join(synth[env].outdir, 'manifest.json'), 'utf8')) as {
      artifacts: Record<string, { type: string; environment?: string }>;
    };
    const stacks = Object.values(manifest.artifacts).filter((a) => a.type === 'aws:cloudformation:stack');
    expect(stacks).toHaveLength(synth[env].stacks.length);
    expect(stacks.length).toBeGreaterThanOrEqual(PARTS.length);
    for (const stack of stacks) expect(stack.environment).toBe(`aws://${config.account}/${config.region}`);
  });

  test('every stack refuses, in one line, to deploy into any other account', () => {
    for (const { stackName } of synth[env].stacks) {
      const rule = templateOf(synth[env], stackName.replace(/^AgentPlatform-[a-z]+-/, '')).toJSON().Rules
        .DeployTargetAccount;
      expect(rule.Assertions).toHaveLength(1);
      const [assertion] = rule.Assertions;
      expect(assertion.Assert).toEqual({ 'Fn::Equals': [{ Ref: 'AWS::AccountId' }, config.account] });
      expect(assertion.AssertDescription).not.toContain('\n');
      if (config.account === PLACEHOLDER_ACCOUNT)
        expect(assertion.AssertDescription).toMatch(/offline placeholder/);
    }
  });
});

test('the fixture covers the placeholder, an account from context and another region', () => {
  expect(fixtureConfig('dev').account).toBe(PLACEHOLDER_ACCOUNT);
  expect(FIXTURE_TARGETS.staging.account).toBe('444455556666');
  expect(fixtureConfig('prod')).toMatchObject({
    account: '111122223333',
    region: 'eu-west-1',
    availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
  });
});

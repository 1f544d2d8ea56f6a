import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HelpCache, readScripts } from './runbook-commands.ts';
import {
  commandProblems,
  hygieneProblems,
  loadWorkflow,
  readWorkflows,
  syntaxErrors,
  targetProblems,
  unpinnedActions,
  type WorkflowFile,
} from './workflows.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const workflows = readWorkflows(root);
const byName = (name: string) => workflows.find((w) => w.name === name)!;
const PROD = 'prod';

/** The same workflow with one textual change, for the cases each rule must catch. */
function edited(name: string, from: string | RegExp, to: string): WorkflowFile {
  const file = byName(name);
  const text = file.text.replace(from, to);
  expect(text).not.toBe(file.text);
  return { name: file.name, text };
}

describe('the workflow set', () => {
  it('is ci, deploy, load-gate and dr-drill', () => {
    expect(workflows.map((w) => w.name)).toEqual(['ci.yml', 'deploy.yml', 'dr-drill.yml', 'load-gate.yml']);
  });

  it.each(workflows.map((w) => [w.name, w] as const))(
    '%s parses under GitHub’s workflow parser',
    (_, file) => {
      expect(syntaxErrors(file)).toEqual([]);
    },
  );

  it('the parser catches a misspelt key', () => {
    expect(syntaxErrors(edited('ci.yml', 'timeout-minutes: 30', 'timeout-minute: 30'))).toEqual([
      expect.stringContaining("Unexpected value 'timeout-minute'"),
    ]);
  });
});

describe('pinned actions', () => {
  it.each(workflows.map((w) => [w.name, w] as const))('%s pins every action to a commit SHA', (_, file) => {
    expect(unpinnedActions(file)).toEqual([]);
  });

  it.each([
    ['a tag', 'actions/checkout@v4'],
    ['a short SHA', 'actions/checkout@11bd719'],
    ['no version comment', 'actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 #'],
  ])('refuses %s', (_, ref) => {
    const file = edited('ci.yml', /actions\/checkout@\S+ # v4\.2\.2/, ref);
    expect(unpinnedActions(file)).toHaveLength(1);
  });
});

describe('hygiene', () => {
  it.each(workflows.map((w) => [w.name, w] as const))(
    '%s: permissions, timeouts, no expression in a script',
    (_, file) => {
      expect(hygieneProblems(file, loadWorkflow(file))).toEqual([]);
    },
  );

  it.each([
    ['a job without a timeout', 'ci.yml', '    timeout-minutes: 30\n', '', "no 'timeout-minutes'"],
    [
      'id-token without OIDC',
      'ci.yml',
      '    permissions:\n      contents: read\n    services',
      '    permissions:\n      contents: read\n      id-token: write\n    services',
      "'id-token: write' without OIDC use",
    ],
    [
      'a job without permissions',
      'load-gate.yml',
      '    permissions:\n      contents: read\n    env',
      '    env',
      "no 'permissions'",
    ],
    [
      'a secret pasted into a script',
      'load-gate.yml',
      '--suite "$SUITE"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, not a JavaScript template
      '--suite ${{ inputs.suite }}',
      "an expression inside 'run:'",
    ],
  ])('catches %s', (_, name, from, to, problem) => {
    const file = edited(name, from, to);
    expect(hygieneProblems(file, loadWorkflow(file))).toEqual([expect.stringContaining(problem)]);
  });
});

describe('targets', () => {
  it.each(workflows.map((w) => [w.name, w] as const))(
    '%s deploys prod only after review, drills only staging',
    (_, file) => {
      expect(targetProblems(file, loadWorkflow(file), PROD)).toEqual([]);
    },
  );

  it('the prod deploy job sits in the reviewed prod environment, after the prod diff', () => {
    const deploy = loadWorkflow(byName('deploy.yml'));
    expect(deploy.jobs.prod?.environment).toBe(PROD);
    expect(readFileSync(join(root, '.github/workflows/deploy.yml'), 'utf8')).toMatch(
      /prod:\n[\s\S]*needs: prod-diff/,
    );
  });

  it.each([
    [
      'prod deployed outside its environment',
      'deploy.yml',
      'environment: prod\n',
      'environment: staging\n',
      "deploys prod outside the 'prod' environment",
    ],
    [
      'a drill against prod',
      'dr-drill.yml',
      'pitr --env staging',
      'pitr --env prod',
      'a drill that does not name --env staging',
    ],
    [
      'a drill confirmed for prod',
      'dr-drill.yml',
      'cleanup --env staging --yes',
      'cleanup --env staging --confirm prod --yes',
      'a drill with --confirm',
    ],
    [
      'a deploy without a concurrency group',
      'deploy.yml',
      '    concurrency:\n      group: deploy-staging\n      cancel-in-progress: false\n',
      '',
      'without a concurrency group',
    ],
  ])('catches %s', (_, name, from, to, problem) => {
    const file = edited(name, from, to);
    expect(targetProblems(file, loadWorkflow(file), PROD)).toEqual([expect.stringContaining(problem)]);
  });
});

// Spawns `tsx bin/<x>.ts [sub] --help` once per bin and sub-command, as the runbook check does.
describe('every npm and cdk command exists as written', () => {
  const scripts = readScripts(root);
  const helps = new HelpCache(root);

  it.each(workflows.map((w) => [w.name, w] as const))(
    '%s',
    (_, file) => {
      expect(commandProblems(file, loadWorkflow(file), scripts, helps, root)).toEqual([]);
    },
    120_000,
  );

  it('catches a flag the command does not have', () => {
    const file = edited('load-gate.yml', '--reports-dir', '--report-dir');
    expect(commandProblems(file, loadWorkflow(file), scripts, helps, root)).toEqual([
      expect.stringContaining("has no flag '--report-dir'"),
    ]);
  }, 60_000);
});

describe('ci.yml runs what .ci/run runs', () => {
  const ci = loadWorkflow(byName('ci.yml'));
  const steps = ci.jobs.test!.steps.flatMap((s) => (s.run ? [s.run] : []));
  const run = readFileSync(join(root, '.ci/run'), 'utf8');

  it('both go through .ci/steps.sh, with the same steps, then run the README test command', () => {
    const ciSteps = steps.flatMap((s) => /^bash \.ci\/steps\.sh (.+)$/.exec(s)?.[1]?.split(' ') ?? []);
    const runSteps = /^bash \.ci\/steps\.sh ([\w ]+)$/m.exec(run)?.[1]?.split(' ') ?? [];
    // The runner's service containers stand in for the `services` step.
    expect(ciSteps).toEqual(runSteps.filter((s) => s !== 'services'));
    expect(ciSteps).toEqual(['tools', 'install', 'check']);
    expect(steps.at(-1)).toBe('npm test');
    expect(run.trimEnd().split('\n').at(-1)).toBe('npm test');
  });

  it('uses PostgreSQL 15, Redis 7 and Node 20', () => {
    const text = byName('ci.yml').text;
    expect(text).toMatch(/image: postgres:15\n/);
    expect(text).toMatch(/image: redis:7\n/);
    expect(text).toMatch(/node-version: 20\n/);
  });
});

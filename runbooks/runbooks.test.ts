import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RUNBOOKS } from '../constructs/monitoring/runbooks.ts';
import {
  accessPathProblems,
  checkCommand,
  HelpCache,
  headings,
  platformNameProblems,
  platformNames,
  RUNBOOK_FILES,
  RUNBOOK_HEADINGS,
  readScripts,
  runbookCommands,
  splitCommands,
} from './runbook-commands.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const scripts = readScripts(root);
const helps = new HelpCache(root);
const read = (file: string) => readFileSync(join(here, file), 'utf8');

describe('the runbook set', () => {
  it('is exactly the list the team contract names', () => {
    expect(
      readdirSync(here)
        .filter((f) => f.endsWith('.md'))
        .sort(),
    ).toEqual([...RUNBOOK_FILES].sort());
  });

  it('has every runbook an alarm links to', () => {
    expect(Object.values(RUNBOOKS).filter((f) => !(RUNBOOK_FILES as readonly string[]).includes(f))).toEqual(
      [],
    );
  });

  it.each(RUNBOOK_FILES)('%s links only to runbooks that exist', (file) => {
    const linked = [...read(file).matchAll(/`([a-z0-9-]+\.md)`/g)].map((m) => m[1]!);
    expect(linked.filter((f) => !(RUNBOOK_FILES as readonly string[]).includes(f))).toEqual([]);
  });

  it.each(RUNBOOK_FILES)('%s has Symptom, Check, Act, Verify, Escalate in order, and commands', (file) => {
    const text = read(file);
    expect(headings(text)).toEqual([...RUNBOOK_HEADINGS]);
    expect(runbookCommands(file, text).length).toBeGreaterThan(0);
  });
});

describe('every runbook reaches the cluster the one documented way', () => {
  it.each(RUNBOOK_FILES)('%s', (file) => {
    const text = read(file);
    expect(accessPathProblems(runbookCommands(file, text), text)).toEqual([]);
  });

  it('flags kubectl before update-kubeconfig, a wrong cluster name and another access path', () => {
    const md = (body: string) => `## Check\n\n\`\`\`bash\n${body}\n\`\`\`\n`;
    const check = (body: string) => accessPathProblems(runbookCommands('x.md', md(body)), md(body));
    expect(check('kubectl get pods\naws eks update-kubeconfig --name agent-platform-$ENV')).toEqual([
      "'kubectl get pods' runs before 'aws eks update-kubeconfig'",
    ]);
    expect(check('aws eks update-kubeconfig --name my-cluster\nkubectl get pods')).toEqual([
      "'aws eks update-kubeconfig --name my-cluster' must name the environment's cluster (--name agent-platform-$ENV)",
    ]);
    expect(check('aws eks update-kubeconfig --name agent-platform-$ENV\nkubectl get pods')).toEqual([]);
    expect(check('# open a bastion first\nkubectl get pods')[1]).toMatch(/mentions 'bastion'/);
  });
});

describe('every runbook uses the names the charts and the config define', () => {
  const names = platformNames();

  it.each(RUNBOOK_FILES)('%s', (file) => {
    const problems = runbookCommands(file, read(file)).flatMap((c) =>
      platformNameProblems(c.words, names).map((p) => `${c.text}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  it.each([
    ['kubectl -n platform rollout status deployment/control-plan', "no Deployment 'control-plan'"],
    ['kubectl -n platform get cronjob cost-gaurd', "no CronJob 'cost-gaurd'"],
    ['kubectl -n platform logs job/billing-29000000', "no Job 'billing-29000000'"],
    ['kubectl -n agent-platform get pods', "namespace 'agent-platform' is not the platform chart's"],
    [
      'curl -fsS https://api.prod.agents.example.com/readyz',
      "'api.prod.agents.example.com' is no environment's",
    ],
  ])('flags `%s`', (command, problem) => {
    expect(platformNameProblems(splitCommands(command)[0]!, names).join('\n')).toContain(problem);
  });

  it.each([
    'kubectl -n platform rollout status deployment/db-watchdog --timeout=300s',
    'kubectl -n platform logs job/cost-guard-29000000 --tail=200',
    'kubectl -n $TENANT get resourcequota',
    'curl -fsS https://api.agents.example.com/readyz',
  ])('accepts `%s`', (command) => {
    expect(platformNameProblems(splitCommands(command)[0]!, names)).toEqual([]);
  });
});

// Spawns `tsx bin/<x>.ts [sub] --help` once per bin and sub-command, one at a time.
describe('every command in a runbook exists as written', () => {
  it.each(RUNBOOK_FILES)(
    '%s',
    (file) => {
      const problems = runbookCommands(file, read(file)).flatMap((c) =>
        checkCommand(c.words, scripts, helps, root).map((p) => `${c.text}: ${p}`),
      );
      expect(problems).toEqual([]);
    },
    120_000,
  );
});

describe('the command checker', () => {
  it('splits pipes, lists, continuations and substitutions into simple commands', () => {
    const block = [
      '# a comment',
      'export DB=$(aws rds describe-db-instances --db-instance-identifier x --query "A|B" --output text)',
      'psql "$DATABASE_URL" -c "select 1; select 2" | jq . && redis-cli -u "$REDIS_URL" ping \\',
      '  --raw',
    ].join('\n');
    expect(splitCommands(block)).toEqual([
      [
        'aws',
        'rds',
        'describe-db-instances',
        '--db-instance-identifier',
        'x',
        '--query',
        'A|B',
        '--output',
        'text',
      ],
      ['export', 'DB=$SUBST'],
      ['psql', '$DATABASE_URL', '-c', 'select 1; select 2'],
      ['jq', '.'],
      ['redis-cli', '-u', '$REDIS_URL', 'ping', '--raw'],
    ]);
  });

  it.each([
    ['rm -rf /tmp/x', "'rm' is not an allowed tool"],
    ['npm run nope', "no npm script 'nope'"],
    ['npm install left-pad', "use 'npm run <script>'"],
    ['aws rds drop-everything', "unknown aws operation 'rds drop-everything'"],
    ['aws s3 ls', "unknown aws service 's3'"],
    ['kubectl frobnicate pods', "unknown kubectl verb 'frobnicate'"],
    ['kubectl -n platform frobnicate pods', "unknown kubectl verb 'frobnicate'"],
    [
      'curl -X POST http://cp/v1/tenants/acme/explode',
      "'POST /v1/tenants/acme/explode' is not a control-plane route",
    ],
    [
      'npm run dr-drill -- pitr --env dev --no-such-flag',
      "bin/dr-drill.ts pitr has no flag '--no-such-flag'",
    ],
    ['npm run dr-drill -- explode --env dev', "'explode' is not a sub-command of bin/dr-drill.ts"],
    ['npx cdk destroy -c env=prod', "npx may only run 'cdk synth|diff|deploy|rollback|ls'"],
  ])(
    'rejects `%s`',
    (command, problem) => {
      const words = splitCommands(command)[0]!;
      expect(checkCommand(words, scripts, helps, root).join('\n')).toContain(problem);
    },
    60_000,
  );

  it('accepts a real command with its flags', () => {
    const words = splitCommands('npm run dr-drill -- cleanup --env staging --dry-run')[0]!;
    expect(checkCommand(words, scripts, helps, root)).toEqual([]);
  }, 60_000);
});

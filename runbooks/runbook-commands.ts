import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENVIRONMENT_NAMES, loadEnvironmentConfig } from '../config/environments.ts';
import { PLATFORM_NAMESPACE, renderPlatformWorkloads } from '../constructs/platform-workloads.ts';
import { eksWorkloadsProps } from '../constructs/workloads-synth.ts';

/** The runbooks the team contract names; stacks link their alarms to these files. */
export const RUNBOOK_FILES = [
  'deploy-and-rollback.md',
  'rds-failover.md',
  'rds-performance.md',
  'rds-storage.md',
  'restore-from-snapshot.md',
  'point-in-time-restore.md',
  'cache-failover.md',
  'cache-performance.md',
  'eks-node-group-replacement.md',
  'tenant-onboarding-failure.md',
  'tenant-suspension.md',
  'tenant-migrations.md',
  'api-key-rotation.md',
  'cost-spike.md',
  'incident-response.md',
] as const;

/** Every runbook has these second-level headings, in this order. */
export const RUNBOOK_HEADINGS = ['Symptom', 'Check', 'Act', 'Verify', 'Escalate'] as const;

/** Tools a runbook may call. No aws CLI is installed here, so aws commands are checked against KNOWN_AWS. */
export const ALLOWED_TOOLS = [
  'npm',
  'npx',
  'aws',
  'kubectl',
  'psql',
  'redis-cli',
  'curl',
  'jq',
  'export',
  'grep',
  'sleep',
] as const;

/** aws service -> operations the runbooks may use (aws CLI v2 names). */
export const KNOWN_AWS: Record<string, readonly string[]> = {
  rds: [
    'describe-db-instances',
    'describe-db-clusters',
    'describe-events',
    'describe-db-snapshots',
    'describe-db-log-files',
    'download-db-log-file-portion',
    'describe-pending-maintenance-actions',
    'describe-db-proxy-targets',
    'reboot-db-instance',
    'failover-db-cluster',
    'create-db-snapshot',
    'restore-db-instance-from-db-snapshot',
    'restore-db-instance-to-point-in-time',
    'modify-db-instance',
    'delete-db-instance',
    'wait',
  ],
  elasticache: [
    'describe-replication-groups',
    'describe-cache-clusters',
    'describe-events',
    'test-failover',
    'modify-replication-group',
  ],
  cloudwatch: ['describe-alarms', 'get-metric-statistics', 'get-metric-data', 'set-alarm-state'],
  logs: ['tail', 'filter-log-events'],
  pi: ['get-resource-metrics', 'describe-dimension-keys'],
  eks: [
    'describe-cluster',
    'list-nodegroups',
    'describe-nodegroup',
    'update-nodegroup-config',
    'update-nodegroup-version',
    'create-nodegroup',
    'delete-nodegroup',
    'describe-update',
    'update-kubeconfig',
  ],
  autoscaling: ['describe-auto-scaling-groups', 'describe-scaling-activities'],
  cloudformation: ['describe-stacks', 'describe-stack-events', 'rollback-stack', 'continue-update-rollback'],
  ce: ['get-cost-and-usage'],
  budgets: ['describe-budgets', 'describe-budget'],
  secretsmanager: ['describe-secret', 'get-secret-value', 'rotate-secret'],
  sns: ['publish'],
  sts: ['get-caller-identity'],
};

export const KNOWN_KUBECTL = [
  'get',
  'describe',
  'logs',
  'top',
  'rollout',
  'cordon',
  'uncordon',
  'drain',
  'scale',
  'patch',
  'delete',
  'apply',
  'wait',
  'events',
  'config',
  'auth',
  'create',
] as const;

/** `npx` runs only the pinned CDK CLI (DESIGN.md: `npx cdk deploy -c env=NAME`). */
export const KNOWN_CDK = ['synth', 'diff', 'deploy', 'rollback', 'ls'] as const;

/**
 * Control-plane routes a curl in a runbook may call; control-plane-routes.test.ts holds this list equal to
 * the routes the server registers, so a route added or removed there fails until it is added here too.
 */
export const CONTROL_PLANE_ROUTES = [
  'GET /v1/tenants',
  'POST /v1/tenants',
  'GET /v1/tenants/:id',
  'POST /v1/tenants/:id/suspend',
  'POST /v1/tenants/:id/resume',
  'PUT /v1/tenants/:id/tier',
  'POST /v1/tenants/:id/api-keys',
  'POST /v1/tenants/:id/api-keys/:prefix/rotate',
  'DELETE /v1/tenants/:id/api-keys/:prefix',
  'GET /v1/me',
  'POST /v1/usage',
  'POST /v1/admission',
  'POST /v1/admission/:taskId/release',
  'DELETE /console/api/v1/tenants/:id/api-keys/:prefix',
  'GET /console',
  'GET /console/',
  'GET /console/api/v1/tenants',
  'GET /console/api/v1/tenants/:id',
  'GET /console/assets/app.css',
  'GET /console/assets/app.js',
  'GET /console/callback',
  'GET /console/costs',
  'GET /console/health',
  'GET /console/login',
  'GET /console/login/start',
  'GET /console/tenants',
  'GET /console/tenants/:id',
  'GET /portal',
  'GET /portal/',
  'GET /portal/assets/app.css',
  'GET /portal/assets/app.js',
  'GET /v1/tenants/:id/usage',
  'GET /v1/usage',
  'POST /console/api/v1/tenants',
  'POST /console/api/v1/tenants/:id/api-keys',
  'POST /console/api/v1/tenants/:id/api-keys/:prefix/rotate',
  'POST /console/api/v1/tenants/:id/resume',
  'POST /console/api/v1/tenants/:id/suspend',
  'POST /console/logout',
  'POST /portal/logout',
  'POST /portal/session',
  'POST /v1/admission/:taskId/heartbeat',
  'PUT /console/api/v1/tenants/:id/tier',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
] as const;

/** One shell command found in a runbook, with its words (quotes removed). */
export interface RunbookCommand {
  readonly file: string;
  readonly text: string;
  readonly words: readonly string[];
}

/** The bodies of the ```bash blocks. */
export function bashBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** Second-level headings in order. */
export function headings(markdown: string): string[] {
  return [...markdown.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim());
}

/**
 * Splits a block into simple commands: joins `\` continuations, drops comments, splits on | && || ;
 * outside quotes, and lifts each `$( … )` out as a command of its own.
 */
export function splitCommands(block: string): string[][] {
  const joined = block.replace(/\\\n/g, ' ');
  const commands: string[][] = [];
  for (const line of joined.split('\n')) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    parseLine(line, commands);
  }
  return commands.filter((c) => c.length > 0);
}

function parseLine(line: string, out: string[][]): void {
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length) out.push(words);
    words = [];
  };
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (quote === '"' && c === '$' && line[i + 1] === '(')
        i = liftSubstitution(line, i, out, (t) => (word += t));
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '$' && line[i + 1] === '(') {
      inWord = true;
      i = liftSubstitution(line, i, out, (t) => (word += t));
    } else if (c === '#' && !inWord) {
      break;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '|' || c === ';' || c === '&') {
      endCommand();
      if (line[i + 1] === c) i += 1;
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
}

/** Parses `$( … )` starting at i as commands of its own; returns the index of the closing paren. */
function liftSubstitution(line: string, i: number, out: string[][], append: (text: string) => void): number {
  let depth = 0;
  for (let j = i + 1; j < line.length; j += 1) {
    if (line[j] === '(') depth += 1;
    if (line[j] === ')') depth -= 1;
    if (depth === 0) {
      parseLine(line.slice(i + 2, j), out);
      append('$SUBST');
      return j;
    }
  }
  throw new Error(`unbalanced $( in: ${line}`);
}

/** Every command in every bash block of a runbook. */
export function runbookCommands(file: string, markdown: string): RunbookCommand[] {
  return bashBlocks(markdown).flatMap((block) =>
    splitCommands(block).map((words) => ({ file, text: words.join(' '), words })),
  );
}

/** Reads a command's help text (cached per bin file and sub-command path); spawns tsx once per key. */
export class HelpCache {
  private readonly cache = new Map<string, string>();

  constructor(private readonly root: string) {}

  help(binFile: string, path: readonly string[]): string {
    const key = [binFile, ...path].join(' ');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    let text: string;
    try {
      text = execFileSync(join(this.root, 'node_modules/.bin/tsx'), [binFile, ...path, '--help'], {
        cwd: this.root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
        env: { ...process.env, LOG_LEVEL: 'silent' },
      });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      text = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
    }
    this.cache.set(key, text);
    return text;
  }
}

/** Sub-command names listed under "Commands:" in commander help. */
export function subcommandsIn(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1];
  if (!section) return [];
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((name) => name !== 'help');
}

function routeMatches(method: string, path: string): boolean {
  return CONTROL_PLANE_ROUTES.some((route) => {
    const [m, pattern] = route.split(' ') as [string, string];
    const regex = new RegExp(`^${pattern.replace(/:[a-z]+/g, '[^/]+')}$`);
    return m === method && regex.test(path);
  });
}

function checkCurl(words: readonly string[]): string[] {
  const methodAt = words.findIndex((w) => w === '-X' || w === '--request');
  const method =
    methodAt >= 0 ? words[methodAt + 1]! : words.includes('--data') || words.includes('-d') ? 'POST' : 'GET';
  const url = words.find((w) => /^(https?:\/\/|\$[A-Z_]+\/|\$\{[A-Z_]+\}\/)/.test(w));
  if (!url) return ['curl without a URL'];
  const path = url
    .replace(/^https?:\/\/[^/]+/, '')
    .replace(/^\$\{?[A-Z_]+\}?/, '')
    .split('?')[0]!;
  return routeMatches(method, path) ? [] : [`'${method} ${path}' is not a control-plane route`];
}

/** What is wrong with one command (empty when it is fine). */
export function checkCommand(
  words: readonly string[],
  scripts: Record<string, string>,
  helps: HelpCache,
  root: string,
): string[] {
  let rest = [...words];
  while (rest[0] && /^[A-Z_][A-Z0-9_]*=/.test(rest[0])) rest = rest.slice(1);
  const tool = rest[0];
  if (tool === undefined) return [];
  if (!(ALLOWED_TOOLS as readonly string[]).includes(tool)) return [`'${tool}' is not an allowed tool`];
  if (tool === 'aws') {
    const args = rest.slice(1).filter((w) => !w.startsWith('-'));
    const [service, operation] = args;
    const known = service === undefined ? undefined : KNOWN_AWS[service];
    if (!known) return [`unknown aws service '${service ?? ''}'`];
    return operation !== undefined && known.includes(operation)
      ? []
      : [`unknown aws operation '${service} ${operation ?? ''}'`];
  }
  if (tool === 'kubectl') {
    const args = rest.slice(1);
    // skip global flags that take a value (`-n platform`, `--context prod`)
    const at = args.findIndex(
      (w, i) => !w.startsWith('-') && !['-n', '--namespace', '--context'].includes(args[i - 1] ?? ''),
    );
    const verb = at >= 0 ? args[at] : undefined;
    return verb && (KNOWN_KUBECTL as readonly string[]).includes(verb)
      ? []
      : [`unknown kubectl verb '${verb ?? ''}'`];
  }
  if (tool === 'curl') return checkCurl(rest);
  if (tool === 'npx') {
    return rest[1] === 'cdk' && (KNOWN_CDK as readonly string[]).includes(rest[2] ?? '')
      ? []
      : [`npx may only run 'cdk ${KNOWN_CDK.join('|')}' (got '${rest.slice(1, 3).join(' ')}')`];
  }
  if (tool !== 'npm') return [];
  // `npm test` is npm's own shorthand for `npm run test`, and the README's test command.
  if (rest[1] === 'test' && rest.length === 2)
    return scripts.test === undefined ? ["no npm script 'test'"] : [];
  if (rest[1] !== 'run' || rest[2] === undefined) return [`use 'npm run <script>' (got '${rest.join(' ')}')`];
  const script = scripts[rest[2]];
  if (script === undefined) return [`no npm script '${rest[2]}'`];
  const bin = /^tsx (bin\/[\w-]+\.ts)$/.exec(script)?.[1];
  if (!bin) return [];
  if (!existsSync(join(root, bin))) return [`${bin} does not exist`];
  const dash = rest.indexOf('--');
  const args = dash >= 0 ? rest.slice(dash + 1) : [];
  // no arguments: nothing to check, and a bin without a CLI (a server) must not be started for its help
  if (args.length === 0) return [];
  const path: string[] = [];
  let texts = [helps.help(bin, path)];
  for (const arg of args) {
    if (arg.startsWith('-')) continue;
    if (!subcommandsIn(texts.at(-1)!).includes(arg)) break;
    path.push(arg);
    texts = [...texts, helps.help(bin, path)];
  }
  if (subcommandsIn(texts.at(-1)!).length > 0 && path.length === 0 && args.some((a) => !a.startsWith('-'))) {
    return [`'${args.find((a) => !a.startsWith('-'))}' is not a sub-command of ${bin}`];
  }
  const all = texts.join('\n');
  return args
    .filter((a) => a.startsWith('--') && a !== '--')
    .map((a) => a.split('=')[0]!)
    .filter((flag) => !new RegExp(`${flag}(?![\\w-])`).test(all))
    .map((flag) => `${bin}${path.length ? ` ${path.join(' ')}` : ''} has no flag '${flag}'`);
}

/**
 * The one way operators reach the cluster: the public API endpoint (open to `cluster.publicAccessCidrs`, with
 * access entries deciding who may act), after `aws eks update-kubeconfig` for the environment's cluster.
 */
export const CLUSTER_ACCESS_COMMAND = ['aws', 'eks', 'update-kubeconfig'] as const;

/** Words of other access paths that no runbook may send an operator down. */
const OTHER_ACCESS_PATHS = /\b(ssm start-session|bastion|port-forward|vpn)\b/i;

/** Why a runbook's kubectl commands would not reach the cluster (empty when they would). */
export function accessPathProblems(commands: readonly RunbookCommand[], markdown: string): string[] {
  const isAccess = (c: RunbookCommand) => CLUSTER_ACCESS_COMMAND.every((w, i) => c.words[i] === w);
  const firstKubectl = commands.findIndex((c) => c.words[0] === 'kubectl');
  const problems: string[] = [];
  if (firstKubectl >= 0) {
    const access = commands.findIndex(isAccess);
    if (access < 0 || access > firstKubectl) {
      problems.push(`'${commands[firstKubectl]!.text}' runs before 'aws eks update-kubeconfig'`);
    }
  }
  for (const c of commands.filter(isAccess)) {
    const name = c.words[c.words.indexOf('--name') + 1] ?? '';
    if (!c.words.includes('--name') || !/^(agent-platform-\$ENV|\$CLUSTER)$/.test(name)) {
      problems.push(`'${c.text}' must name the environment's cluster (--name agent-platform-$ENV)`);
    }
  }
  const other = OTHER_ACCESS_PATHS.exec(markdown);
  if (other)
    problems.push(`mentions '${other[0]}': the access path is the public endpoint (stacks/README.md)`);
  return problems;
}

export function readScripts(root: string): Record<string, string> {
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts;
}

/** What the platform chart and the env config name, over every environment: what a runbook may refer to. */
export interface PlatformNames {
  /** Object names by kind in the chart's namespace, e.g. `Deployment` -> control-plane, db-watchdog. */
  readonly byKind: ReadonlyMap<string, ReadonlySet<string>>;
  /** `api.<domain>` of every environment. */
  readonly apiHosts: ReadonlySet<string>;
}

export function platformNames(): PlatformNames {
  const byKind = new Map<string, Set<string>>();
  const apiHosts = new Set<string>();
  for (const env of ENVIRONMENT_NAMES) {
    const config = loadEnvironmentConfig(env);
    apiHosts.add(`api.${config.domain}`);
    for (const manifest of renderPlatformWorkloads(eksWorkloadsProps(config, 'image'))) {
      const metadata = manifest.metadata as { name: string; namespace?: string };
      if (metadata.namespace !== PLATFORM_NAMESPACE) continue;
      const kind = String(manifest.kind);
      byKind.set(kind, (byKind.get(kind) ?? new Set()).add(metadata.name));
    }
  }
  return { byKind, apiHosts };
}

/** kubectl resource words (`deploy`, `cronjob`...) -> the kind they name. A Job is named after its CronJob. */
const KUBECTL_KINDS: Record<string, string> = {
  deployment: 'Deployment',
  deployments: 'Deployment',
  deploy: 'Deployment',
  cronjob: 'CronJob',
  cronjobs: 'CronJob',
  cj: 'CronJob',
  job: 'Job',
  service: 'Service',
  svc: 'Service',
  hpa: 'HorizontalPodAutoscaler',
  pdb: 'PodDisruptionBudget',
  networkpolicy: 'NetworkPolicy',
  netpol: 'NetworkPolicy',
  ingress: 'Ingress',
  serviceaccount: 'ServiceAccount',
  sa: 'ServiceAccount',
};

function namespaceOf(words: readonly string[]): string | undefined {
  for (const [i, word] of words.entries()) {
    if (word === '-n' || word === '--namespace') return words[i + 1];
    if (word.startsWith('--namespace=')) return word.slice('--namespace='.length);
  }
  return undefined;
}

/** Kind and name of every `kind/name` or `<verb> kind name` reference of a kubectl command. */
function kubectlReferences(words: readonly string[]): [string, string][] {
  const refs: [string, string][] = [];
  for (const [i, word] of words.entries()) {
    const slash = /^([a-z]+)\/([a-z0-9$][a-z0-9-]*)$/.exec(word);
    if (slash && KUBECTL_KINDS[slash[1]!]) refs.push([KUBECTL_KINDS[slash[1]!]!, slash[2]!]);
    const next = words[i + 1];
    if (KUBECTL_KINDS[word] && next !== undefined && /^[a-z][a-z0-9-]*$/.test(next) && i > 1) {
      refs.push([KUBECTL_KINDS[word]!, next]);
    }
  }
  return refs;
}

/**
 * Names in one command that the platform does not define: a literal namespace other than the chart's, an object
 * of the chart's namespace that the chart does not render, or an api host of no environment.
 */
export function platformNameProblems(words: readonly string[], names: PlatformNames): string[] {
  const problems: string[] = [];
  for (const word of words) {
    const host = /https?:\/\/(api\.[^/\s"']+)/.exec(word)?.[1];
    if (host && !names.apiHosts.has(host)) {
      problems.push(`'${host}' is no environment's api host (${[...names.apiHosts].join(', ')})`);
    }
  }
  if (words[0] !== 'kubectl') return problems;
  const namespace = namespaceOf(words);
  if (namespace === undefined || namespace.startsWith('$')) return problems;
  if (namespace !== PLATFORM_NAMESPACE) {
    return [...problems, `namespace '${namespace}' is not the platform chart's (${PLATFORM_NAMESPACE})`];
  }
  for (const [kind, name] of kubectlReferences(words)) {
    if (name.startsWith('$')) continue;
    const known =
      kind === 'Job'
        ? [...(names.byKind.get('CronJob') ?? [])].some((cron) => new RegExp(`^${cron}-\\d+$`).test(name))
        : (names.byKind.get(kind)?.has(name) ?? false);
    if (!known) problems.push(`the platform chart renders no ${kind} '${name}' in ${PLATFORM_NAMESPACE}`);
  }
  return problems;
}

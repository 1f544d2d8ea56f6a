import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parse } from 'yaml';
import { z } from 'zod';
import { checkCommand, type HelpCache, splitCommands } from './runbook-commands.ts';

/** Where the GitHub Actions workflows live, relative to the repository root. */
export const WORKFLOW_DIR = '.github/workflows';

const stepSchema = z.object({
  uses: z.string().optional(),
  run: z.string().optional(),
  if: z.string().optional(),
});
const jobSchema = z.object({
  'runs-on': z.unknown(),
  permissions: z.union([z.record(z.string(), z.string()), z.string()]).optional(),
  'timeout-minutes': z.number().optional(),
  environment: z.union([z.string(), z.object({ name: z.string() })]).optional(),
  concurrency: z.unknown().optional(),
  steps: z.array(stepSchema),
});
const workflowSchema = z.object({
  permissions: z.union([z.record(z.string(), z.string()), z.string()]).optional(),
  concurrency: z.unknown().optional(),
  jobs: z.record(z.string(), jobSchema),
});

export type Job = z.infer<typeof jobSchema>;
export type Workflow = z.infer<typeof workflowSchema>;

export interface WorkflowFile {
  readonly name: string;
  readonly text: string;
}

export function readWorkflows(root: string): WorkflowFile[] {
  const dir = join(root, WORKFLOW_DIR);
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }));
}

/** Errors from GitHub's own workflow parser (@actions/workflow-parser): schema, keys and expressions. */
export function syntaxErrors(file: WorkflowFile): string[] {
  const result = parseWorkflow({ name: file.name, content: file.text }, new NoOperationTraceWriter());
  return result.context.errors.getErrors().map((e) => e.message);
}

export function loadWorkflow(file: WorkflowFile): Workflow {
  return workflowSchema.parse(parse(file.text));
}

const PINNED = /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/;

/** Every `uses:` of a third-party action names a full commit SHA and says its version in a comment. */
export function unpinnedActions(file: WorkflowFile): string[] {
  return file.text.split('\n').flatMap((line, i) => {
    const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
    if (!m) return [];
    const [, ref, rest] = m as unknown as [string, string, string];
    if (ref.startsWith('./') || ref.startsWith('docker://')) return [];
    if (!PINNED.test(ref))
      return [`${file.name}:${i + 1}: '${ref}' is not pinned to a 40-character commit SHA`];
    if (!/#\s*v\d/.test(rest)) return [`${file.name}:${i + 1}: '${ref}' has no '# vX.Y.Z' comment`];
    return [];
  });
}

function usesAws(job: Job): boolean {
  return job.steps.some((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'));
}

function environmentOf(job: Job): string | undefined {
  return typeof job.environment === 'string' ? job.environment : job.environment?.name;
}

/**
 * Hygiene every workflow keeps: least permissions declared at both levels, id-token only beside the AWS
 * credentials action, a timeout on every job, and no `${{ }}` inside a shell script (values reach scripts
 * through env, so neither a secret nor an attacker-controlled string is pasted into a command).
 */
export function hygieneProblems(file: WorkflowFile, workflow: Workflow): string[] {
  const problems: string[] = [];
  if (workflow.permissions === undefined) problems.push(`${file.name}: no top-level 'permissions'`);
  for (const [id, job] of Object.entries(workflow.jobs)) {
    const where = `${file.name} job '${id}'`;
    if (job.permissions === undefined) problems.push(`${where}: no 'permissions'`);
    if (typeof job.permissions === 'string') problems.push(`${where}: 'permissions: ${job.permissions}'`);
    if (job['timeout-minutes'] === undefined) problems.push(`${where}: no 'timeout-minutes'`);
    const idToken = typeof job.permissions === 'object' ? job.permissions['id-token'] : undefined;
    if (idToken === 'write' && !usesAws(job)) problems.push(`${where}: 'id-token: write' without OIDC use`);
    if (usesAws(job) && idToken !== 'write')
      problems.push(`${where}: assumes an AWS role without 'id-token: write'`);
    for (const step of job.steps) {
      if (step.run?.includes('${{'))
        problems.push(`${where}: an expression inside 'run:' (${step.run.split('\n')[0]})`);
    }
  }
  return problems;
}

function commandsOf(job: Job): string[][] {
  return job.steps.flatMap((s) => (s.run ? splitCommands(s.run) : []));
}

function contextValue(words: readonly string[], key: string): string | undefined {
  const at = words.findIndex((w, i) => words[i - 1] === '-c' && w.startsWith(`${key}=`));
  return at >= 0 ? words[at]!.slice(key.length + 1) : undefined;
}

/**
 * Deploy and drill rules: a `cdk deploy` to prod runs only in the reviewed prod environment and one at a
 * time; drills name staging, never prod; every job that changes an environment sits in a concurrency group.
 */
export function targetProblems(file: WorkflowFile, workflow: Workflow, prodEnvironment: string): string[] {
  const problems: string[] = [];
  for (const [id, job] of Object.entries(workflow.jobs)) {
    const where = `${file.name} job '${id}'`;
    const commands = commandsOf(job);
    const deploys = commands.filter((w) => w[0] === 'npx' && w[1] === 'cdk' && w[2] === 'deploy');
    for (const words of deploys) {
      const env = contextValue(words, 'env');
      if (env === undefined) problems.push(`${where}: cdk deploy without -c env=`);
      if (env === 'prod' && environmentOf(job) !== prodEnvironment)
        problems.push(`${where}: deploys prod outside the '${prodEnvironment}' environment`);
    }
    const drills = commands.filter((w) => w[0] === 'npm' && w[2] === 'dr-drill');
    for (const words of drills) {
      const env = words[words.indexOf('--env') + 1];
      if (!words.includes('--env') || env !== 'staging')
        problems.push(`${where}: a drill that does not name --env staging`);
      if (words.includes('--confirm')) problems.push(`${where}: a drill with --confirm`);
    }
    const changes = deploys.length > 0 || drills.length > 0;
    if (changes && job.concurrency === undefined && workflow.concurrency === undefined)
      problems.push(`${where}: changes an environment without a concurrency group`);
  }
  return problems;
}

/** Every `npm run` and `npx cdk` command in a workflow, checked as the runbook commands are. */
export function commandProblems(
  file: WorkflowFile,
  workflow: Workflow,
  scripts: Record<string, string>,
  helps: HelpCache,
  root: string,
): string[] {
  return Object.entries(workflow.jobs).flatMap(([id, job]) =>
    commandsOf(job)
      .filter((w) => w[0] === 'npm' || w[0] === 'npx')
      .filter((w) => !(w[0] === 'npm' && w[1] === 'ci'))
      .flatMap((w) =>
        checkCommand(w, scripts, helps, root).map((p) => `${file.name} job '${id}': ${w.join(' ')}: ${p}`),
      ),
  );
}

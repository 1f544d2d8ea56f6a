import { Command } from 'commander';
import pg from 'pg';
import { z } from 'zod';
import { createLogger } from '../monitors/logger.ts';
import { enforceDatabaseLimits, watchDatabaseLimits } from '../tenants/db-limits-watchdog.ts';

const postgresUrl = (flag: string, env: string, what: string) =>
  z
    .string({ error: `set ${flag} or ${env} (${what})` })
    .regex(/^postgres(ql)?:\/\/.+/, `${flag} must be a postgresql:// URL`);

const optionsSchema = z.object({
  catalogUrl: postgresUrl('--catalog-url', 'DATABASE_URL', 'the catalog database'),
  cellUrl: postgresUrl(
    '--cell-url',
    'CELL_DATABASE_URL',
    'the cell database whose tenant backends are watched',
  ),
  interval: z.coerce.number().int().min(100, '--interval must be at least 100 ms').max(60_000),
  grace: z.coerce.number().int().min(0).max(60_000),
  once: z.boolean().default(false),
  dryRun: z.boolean().default(false),
});

const program = new Command('db-watchdog')
  .description(
    "Enforces each tenant's tier statement and idle-in-transaction limits: cancels a tenant statement, or ends an idle transaction, past its tier's limit plus the grace. Needs pg_signal_backend (the RDS master user has it).",
  )
  .option('--catalog-url <url>', 'the catalog database: tenants and their tiers (default: DATABASE_URL)')
  .option(
    '--cell-url <url>',
    "the cell database whose tenants' backends are watched; one watchdog per cell (default: CELL_DATABASE_URL)",
  )
  .option('--interval <ms>', 'time between passes', '1000')
  .option('--grace <ms>', "time past the tier's limit before acting", '1000')
  .option('--once', 'run one pass and exit')
  .option('--dry-run', 'log what would be signalled and signal nothing')
  .showHelpAfterError()
  .action(async (raw: Record<string, unknown>) => {
    const parsed = optionsSchema.safeParse({
      ...raw,
      catalogUrl: raw.catalogUrl ?? process.env.DATABASE_URL,
      cellUrl: raw.cellUrl ?? process.env.CELL_DATABASE_URL,
    });
    if (!parsed.success) {
      console.error(`db-watchdog: ${parsed.error.issues[0]?.message}`);
      process.exitCode = 2;
      return;
    }
    const o = parsed.data;
    const log = createLogger({ name: 'db-watchdog' });
    const catalog = new pg.Pool({ connectionString: o.catalogUrl, max: 1 });
    const cell = new pg.Pool({ connectionString: o.cellUrl, max: 1 });
    for (const pool of [catalog, cell])
      pool.on('error', (error) => log.warn({ err: error.message }, 'database connection lost'));
    const databases = { catalog, cell };
    const report = (actions: Awaited<ReturnType<typeof enforceDatabaseLimits>>) => {
      for (const a of actions)
        log.warn({ ...a, dryRun: o.dryRun }, `${a.action} tenant backend past its tier limit`);
    };
    try {
      if (o.once) {
        report(await enforceDatabaseLimits(databases, { graceMs: o.grace, dryRun: o.dryRun }));
        return;
      }
      const stop = new AbortController();
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
      log.info({ intervalMs: o.interval, graceMs: o.grace, dryRun: o.dryRun }, 'watching tenant backends');
      await watchDatabaseLimits(databases, {
        intervalMs: o.interval,
        graceMs: o.grace,
        dryRun: o.dryRun,
        signal: stop.signal,
        onPass: report,
        onError: (error) =>
          log.error({ err: error instanceof Error ? error.message : String(error) }, 'pass failed'),
      });
    } finally {
      await Promise.all([catalog.end(), cell.end()]);
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  console.error(`db-watchdog: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  process.exitCode = 1;
}

import { Command } from 'commander';
import pg from 'pg';
import { z } from 'zod';
import { createLogger } from '../monitors/logger.ts';
import { enforceDatabaseLimits, watchDatabaseLimits } from '../tenants/db-limits-watchdog.ts';

const optionsSchema = z.object({
  databaseUrl: z
    .string({ error: 'set --database-url or DATABASE_URL (the cell database holding the catalog)' })
    .regex(/^postgres(ql)?:\/\/.+/, '--database-url must be a postgresql:// URL'),
  interval: z.coerce.number().int().min(100, '--interval must be at least 100 ms').max(60_000),
  grace: z.coerce.number().int().min(0).max(60_000),
  once: z.boolean().default(false),
  dryRun: z.boolean().default(false),
});

const program = new Command('db-watchdog')
  .description(
    "Enforces each tenant's tier statement and idle-in-transaction limits: cancels a tenant statement, or ends an idle transaction, past its tier's limit plus the grace. Needs pg_signal_backend (the RDS master user has it).",
  )
  .option('--database-url <url>', 'cell database with the catalog (default: DATABASE_URL)')
  .option('--interval <ms>', 'time between passes', '1000')
  .option('--grace <ms>', "time past the tier's limit before acting", '1000')
  .option('--once', 'run one pass and exit')
  .option('--dry-run', 'log what would be signalled and signal nothing')
  .showHelpAfterError()
  .action(async (raw: Record<string, unknown>) => {
    const parsed = optionsSchema.safeParse({
      ...raw,
      databaseUrl: raw.databaseUrl ?? process.env.DATABASE_URL,
    });
    if (!parsed.success) {
      console.error(`db-watchdog: ${parsed.error.issues[0]?.message}`);
      process.exitCode = 2;
      return;
    }
    const o = parsed.data;
    const log = createLogger({ name: 'db-watchdog' });
    const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 1 });
    pool.on('error', (error) => log.warn({ err: error.message }, 'database connection lost'));
    const report = (actions: Awaited<ReturnType<typeof enforceDatabaseLimits>>) => {
      for (const a of actions)
        log.warn({ ...a, dryRun: o.dryRun }, `${a.action} tenant backend past its tier limit`);
    };
    try {
      if (o.once) {
        report(await enforceDatabaseLimits(pool, { graceMs: o.grace, dryRun: o.dryRun }));
        return;
      }
      const stop = new AbortController();
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
      log.info({ intervalMs: o.interval, graceMs: o.grace, dryRun: o.dryRun }, 'watching tenant backends');
      await watchDatabaseLimits(pool, {
        intervalMs: o.interval,
        graceMs: o.grace,
        dryRun: o.dryRun,
        signal: stop.signal,
        onPass: report,
        onError: (error) =>
          log.error({ err: error instanceof Error ? error.message : String(error) }, 'pass failed'),
      });
    } finally {
      await pool.end();
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  console.error(`db-watchdog: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  process.exitCode = 1;
}

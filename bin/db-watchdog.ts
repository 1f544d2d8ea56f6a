import { Command } from 'commander';
import pg from 'pg';
import { z } from 'zod';
import { ENVIRONMENT_NAMES, loadEnvironmentConfig } from '../config/environments.ts';
import { createLogger } from '../monitors/logger.ts';
import { cellSpecs, parseCellUrls } from '../tenants/cells.ts';
import { enforceDatabaseLimits, watchDatabaseLimits } from '../tenants/db-limits-watchdog.ts';
import { clientConfig, poolConnection } from '../tenants/lifecycle/session.ts';

const postgresUrl = (flag: string) =>
  z.string().regex(/^postgres(ql)?:\/\/.+/, `${flag} must be a postgresql:// URL`);

const optionsSchema = z.object({
  catalogUrl: postgresUrl('--catalog-url').or(
    z.undefined().refine(() => false, 'set --catalog-url or DATABASE_URL (the catalog database)'),
  ),
  cellUrl: postgresUrl('--cell-url').optional(),
  env: z.enum(ENVIRONMENT_NAMES, `--env must be one of ${ENVIRONMENT_NAMES.join(', ')}`),
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
    'watch this cell database only (default: CELL_DATABASE_URL, else every cell of the env config, placed as CELL_DATABASE_URLS says)',
  )
  .option('--env <name>', 'environment config whose cells are watched (default: ENV, else dev)')
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
      env: raw.env ?? process.env.ENV ?? 'dev',
    });
    if (!parsed.success) {
      console.error(`db-watchdog: ${parsed.error.issues[0]?.message}`);
      process.exitCode = 2;
      return;
    }
    const o = parsed.data;
    const log = createLogger({ name: 'db-watchdog' });
    const catalog = new pg.Pool({ connectionString: o.catalogUrl, max: 1 });
    // One cell given, or every cell the env config lists (on the catalog's server unless placed elsewhere).
    const cells = o.cellUrl
      ? [{ id: 'cell', pool: new pg.Pool({ connectionString: o.cellUrl, max: 1 }) }]
      : cellSpecs(
          loadEnvironmentConfig(o.env),
          poolConnection(catalog),
          parseCellUrls(process.env.CELL_DATABASE_URLS),
        ).map((spec) => ({ id: spec.id, pool: new pg.Pool({ ...clientConfig(spec.connection), max: 1 }) }));
    for (const pool of [catalog, ...cells.map((c) => c.pool)])
      pool.on('error', (error) => log.warn({ err: error.message }, 'database connection lost'));
    const report = (cell: string) => (actions: Awaited<ReturnType<typeof enforceDatabaseLimits>>) => {
      for (const a of actions)
        log.warn({ ...a, cell, dryRun: o.dryRun }, `${a.action} tenant backend past its tier limit`);
    };
    try {
      if (o.once) {
        for (const cell of cells)
          report(cell.id)(
            await enforceDatabaseLimits({ catalog, cell: cell.pool }, { graceMs: o.grace, dryRun: o.dryRun }),
          );
        return;
      }
      const stop = new AbortController();
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
      log.info(
        { intervalMs: o.interval, graceMs: o.grace, dryRun: o.dryRun, cells: cells.map((c) => c.id) },
        'watching tenant backends',
      );
      await Promise.all(
        cells.map((cell) =>
          watchDatabaseLimits(
            { catalog, cell: cell.pool },
            {
              intervalMs: o.interval,
              graceMs: o.grace,
              dryRun: o.dryRun,
              signal: stop.signal,
              onPass: report(cell.id),
              onError: (error) =>
                log.error(
                  { cell: cell.id, err: error instanceof Error ? error.message : String(error) },
                  'pass failed',
                ),
            },
          ),
        ),
      );
    } finally {
      await Promise.all([catalog.end(), ...cells.map((c) => c.pool.end())]);
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  console.error(`db-watchdog: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  process.exitCode = 1;
}

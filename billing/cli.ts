import { SNSClient } from '@aws-sdk/client-sns';
import { Presets, SingleBar } from 'cli-progress';
import type pg from 'pg';
import type { EnvironmentConfig } from '../config/environments.ts';
import { createStripeClient, loadBillingConfig } from './config.ts';
import { BillingConfigError } from './errors.ts';
import { type ExportResult, exportUsage } from './export.ts';
import { formatExport, formatReconcile, formatSetup } from './format.ts';
import { type ReconcileResult, reconcileMonth } from './reconcile.ts';
import { setupBilling } from './setup.ts';
import { CatalogUsageSource } from './usage-source.ts';

/** What the command prints and its exit code. */
export interface CommandOutcome {
  readonly output: string;
  readonly exitCode: number;
}

const show = (json: boolean | undefined, value: unknown, text: string) =>
  json ? JSON.stringify(value, null, 2) : text;

export async function setupCommand(env: EnvironmentConfig, options: { dryRun?: boolean; json?: boolean }) {
  const stripe = createStripeClient(loadBillingConfig(env));
  const result = await setupBilling(stripe, env, { dryRun: options.dryRun ?? false });
  return { output: show(options.json, result, formatSetup(result)), exitCode: 0 };
}

/** Parses `--since`: an ISO time or date. */
export function parseSince(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const t = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t.getTime()))
    throw new BillingConfigError(
      `'--since' (${value}) must be an ISO date or time, e.g. 2026-11-01 or 2026-11-01T13:00Z`,
    );
  return t;
}

export async function exportCommand(
  pool: pg.Pool,
  env: EnvironmentConfig,
  options: { since?: string; dryRun?: boolean; json?: boolean; tenant?: string[]; progress?: boolean },
): Promise<CommandOutcome> {
  const since = parseSince(options.since);
  const dryRun = options.dryRun ?? false;
  // A dry run reads only the catalog; a real run stops here, before anything, without a key.
  const stripe = dryRun && !process.env.STRIPE_API_KEY ? null : createStripeClient(loadBillingConfig(env));
  const bar =
    options.progress && !options.json
      ? new SingleBar(
          {
            format:
              'export |{bar}| {value}/{total} tenants | {events} events, {corrections} corrections | {requests} requests',
            stream: process.stderr,
          },
          Presets.shades_classic,
        )
      : null;
  let result: ExportResult;
  try {
    result = await exportUsage(
      {
        pool,
        stripe,
        env,
        usage: new CatalogUsageSource(pool),
        ...(bar
          ? {
              observer: {
                onProgress: (p) => {
                  if (!bar.isActive) bar.start(p.tenantsTotal, 0);
                  bar.update(p.tenantsDone, {
                    events: p.events,
                    corrections: p.corrections,
                    requests: p.requests,
                  });
                },
              },
            }
          : {}),
      },
      { ...(since ? { since } : {}), dryRun, ...(options.tenant ? { tenants: options.tenant } : {}) },
    );
  } finally {
    bar?.stop();
  }
  return { output: show(options.json, result, formatExport(result)), exitCode: result.ok ? 0 : 1 };
}

export async function reconcileCommand(
  pool: pg.Pool,
  env: EnvironmentConfig,
  options: { month?: string; tolerance?: string; json?: boolean; notify?: boolean },
): Promise<CommandOutcome> {
  const config = loadBillingConfig(env);
  const tolerance = options.tolerance === undefined ? config.reconcileTolerance : Number(options.tolerance);
  if (!(Number.isFinite(tolerance) && tolerance >= 0 && tolerance <= 1))
    throw new BillingConfigError(`'--tolerance' (${options.tolerance}) must be a fraction between 0 and 1`);
  const result: ReconcileResult = await reconcileMonth(
    {
      pool,
      stripe: createStripeClient(config),
      env,
      usage: new CatalogUsageSource(pool),
      ...(options.notify === false ? {} : { sns: new SNSClient({ region: env.region }) }),
    },
    options.month ?? new Date(Date.now() - 86_400_000).toISOString().slice(0, 7),
    { tolerance },
  );
  return {
    output: show(options.json, result, formatReconcile(result)),
    exitCode: result.overTolerance > 0 ? 1 : 0,
  };
}

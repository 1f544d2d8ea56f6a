import type { BenchFigure } from '../bench/figure.ts';
import { exportUsage } from './export.ts';
import { startBilling } from './testing/fixture.ts';
import { CatalogUsageSource } from './usage-source.ts';

/** Tenants in the benchmark month; the figure is 1,000 (about 1.4 million events). */
const TENANTS = Number(process.env.BILLING_BENCH_TENANTS ?? 1000);
const HOURS = 720;
const NOW = new Date('2026-12-01T00:30:00Z');
const FROM = new Date('2026-11-01T00:00:00Z');

/**
 * One month of hourly buckets (both meters) for TENANTS tenants, exported to the local Stripe contract
 * server over the v2 meter event stream, 100 events a request; then the same export again, which finds
 * nothing to send. Scale with BILLING_BENCH_TENANTS.
 */
export default async function billingExportBench(): Promise<BenchFigure[]> {
  if (!(Number.isInteger(TENANTS) && TENANTS > 0))
    throw new Error(`BILLING_BENCH_TENANTS (${TENANTS}) must be a positive integer`);
  const f = await startBilling('billing_bench', { now: () => NOW.getTime() });
  try {
    const ids = Array.from({ length: TENANTS }, (_, i) => `bench-${String(i + 1).padStart(5, '0')}`);
    await f.pool.query(
      `INSERT INTO control.tenants (id, tier, status, cell_id) SELECT id, 'pro', 'active', 'cell-1' FROM unnest($1::text[]) AS id`,
      [ids],
    );
    const customers: string[] = [];
    for (const id of ids) customers.push((await f.stripe.customers.create({ name: id })).id);
    await f.pool.query(
      'INSERT INTO control.billing_customers (tenant_id, stripe_customer_id) SELECT * FROM unnest($1::text[], $2::text[])',
      [ids, customers],
    );
    await f.pool.query(
      `INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls)
       SELECT t.id, $2::timestamptz + h * interval '1 hour', 1 + (h % 13) * 0.25, 20 + h % 50
         FROM unnest($1::text[]) AS t(id), generate_series(0, $3 - 1) AS h`,
      [ids, FROM, HOURS],
    );
    f.server.resetEvents();
    const usage = new CatalogUsageSource(f.pool);
    const started = performance.now();
    const result = await exportUsage(
      { pool: f.pool, stripe: f.stripe, env: f.env, usage, now: () => NOW },
      { since: FROM },
    );
    const seconds = (performance.now() - started) / 1000;
    if (!result.ok || f.server.events.length !== TENANTS * HOURS * 2) {
      throw new Error(
        `export incomplete: ${f.server.events.length} of ${TENANTS * HOURS * 2} events, problems ${JSON.stringify(result.problems.slice(0, 3))}`,
      );
    }
    const againStarted = performance.now();
    const again = await exportUsage(
      { pool: f.pool, stripe: f.stripe, env: f.env, usage, now: () => NOW },
      { since: FROM },
    );
    const againSeconds = (performance.now() - againStarted) / 1000;
    return [
      {
        figure: `export one month of hourly buckets, ${TENANTS} tenants (${result.events} events) to the local Stripe server`,
        value: Number(seconds.toFixed(1)),
        unit: 's',
        detail: {
          tenants: TENANTS,
          events: result.events,
          requests: result.requests,
          streamRequests: f.server.stats.streamRequests,
          eventsPerRequest: Number((result.events / f.server.stats.streamRequests).toFixed(1)),
          eventsPerSecond: Math.round(result.events / seconds),
        },
      },
      {
        figure: `export again with nothing new, ${TENANTS} tenants`,
        value: Number(againSeconds.toFixed(1)),
        unit: 's',
        detail: { events: again.events, requests: again.requests },
      },
    ];
  } finally {
    await f.close();
  }
}

import type pg from 'pg';
import type Stripe from 'stripe';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { createCatalogDatabase, type TestDatabase } from '../../tenants/testing/pg.ts';
import { createStripeClient } from '../config.ts';
import type { RetryPolicy } from '../retry.ts';
import { setupBilling } from '../setup.ts';
import { StripeContractServer, type StripeServerOptions } from './stripe-server.ts';

/** Retries fast enough for tests, with the same policy shape the runs use. */
export const TEST_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 2, maxDelayMs: 10 };

export interface BillingFixture {
  readonly db: TestDatabase;
  readonly pool: pg.Pool;
  readonly server: StripeContractServer;
  readonly stripe: Stripe;
  readonly env: ReturnType<typeof loadEnvironmentConfig>;
  close(): Promise<void>;
}

/** A migrated catalog database, a Stripe contract server with the meters and prices set up, and a client. */
export async function startBilling(
  label: string,
  options: StripeServerOptions = {},
): Promise<BillingFixture> {
  const { db, pool } = await createCatalogDatabase(label);
  const server = new StripeContractServer(options);
  const url = new URL(await server.start());
  const stripe = createStripeClient({
    apiKey: server.apiKey,
    api: { host: url.hostname, port: Number(url.port), protocol: 'http' },
    reconcileTolerance: 0,
  });
  const env = loadEnvironmentConfig('dev');
  await setupBilling(stripe, env, { retry: TEST_RETRY });
  return {
    db,
    pool,
    server,
    stripe,
    env,
    async close() {
      await server.stop();
      await pool.end();
      await db.drop();
    },
  };
}

/** Catalog rows for tenants the tests bill; no schema or role, which billing never touches. */
export async function insertTenants(pool: pg.Pool, ids: readonly string[], tier = 'pro'): Promise<void> {
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id) SELECT id, $2, 'active', 'cell-1' FROM unnest($1::text[]) AS id`,
    [ids, tier],
  );
}

/** Creates a Stripe customer for the tenant and records the link, as onboarding does. */
export async function linkCustomer(fixture: BillingFixture, tenantId: string): Promise<string> {
  const customer = await fixture.stripe.customers.create({ name: tenantId, metadata: { tenant: tenantId } });
  await fixture.pool.query(
    'INSERT INTO control.billing_customers (tenant_id, stripe_customer_id) VALUES ($1, $2)',
    [tenantId, customer.id],
  );
  return customer.id;
}

/** Hourly usage rows: `hours` consecutive hours from `from`, values from the hour's index. */
export async function insertHours(
  pool: pg.Pool,
  tenantId: string,
  from: Date,
  hours: number,
  value: (i: number) => { agentMinutes: number; apiCalls: number } = (i) => ({
    agentMinutes: 1 + (i % 7) * 0.5,
    apiCalls: 10 + i,
  }),
): Promise<void> {
  const rows = Array.from({ length: hours }, (_, i) => ({
    hour: new Date(from.getTime() + i * 3600_000),
    ...value(i),
  }));
  await pool.query(
    `INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls)
     SELECT $1, t.hour, t.m, t.c FROM unnest($2::timestamptz[], $3::numeric[], $4::bigint[]) AS t(hour, m, c)`,
    [tenantId, rows.map((r) => r.hour), rows.map((r) => r.agentMinutes), rows.map((r) => r.apiCalls)],
  );
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { stepLines } from '../tenants/lifecycle/steps.ts';
import { offboardTenant } from '../tenants/offboarding.ts';
import { changeTier, createTenant } from '../tenants/provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from '../tenants/provisioning-fixture.ts';
import { createStripeClient } from './config.ts';
import { billingDepsFor, readLink } from './customers.ts';
import { lookupKey } from './meters.ts';
import { setupBilling } from './setup.ts';
import { TEST_RETRY } from './testing/fixture.ts';
import { StripeContractServer } from './testing/stripe-server.ts';

let fx: ProvisioningFixture;
let server: StripeContractServer;
let stripe: ReturnType<typeof createStripeClient>;
let archiveDir: string;
const env = loadEnvironmentConfig('dev');

const withBilling = (customerId?: string) => ({
  ...fx.deps,
  billing: { stripe, retry: TEST_RETRY, ...(customerId ? { customerId } : {}) },
});
const subscriptionPrices = (id: string) =>
  (server.subscriptions.get(id)!.items as { data: { price: { lookup_key: string } }[] }).data
    .map((i) => i.price.lookup_key)
    .sort();

beforeAll(async () => {
  fx = await createProvisioningFixture('billing_customers');
  server = new StripeContractServer();
  const url = new URL(await server.start());
  stripe = createStripeClient({
    apiKey: server.apiKey,
    api: { host: url.hostname, port: Number(url.port), protocol: 'http' },
    reconcileTolerance: 0,
  });
  await setupBilling(stripe, env, { retry: TEST_RETRY });
  archiveDir = await mkdtemp(path.join(tmpdir(), 'billing-archives-'));
});
afterAll(async () => {
  await server?.stop();
  await fx?.close();
  await rm(archiveDir, { recursive: true, force: true });
});

describe('onboarding and offboarding with billing', () => {
  it('creates a customer and subscribes it to the tier, links it in the catalog, and a rerun changes nothing', async () => {
    const id = fx.tenantId('bill-cus');
    const plan = await createTenant(withBilling(), { id, tier: 'pro', actor: 'test', dryRun: true });
    expect(plan.steps.find((s) => s.step === 'billing')).toMatchObject({
      action: 'planned',
      changes: ['create Stripe customer', 'subscribe to tier pro (monthly fee, agent minutes, API calls)'],
    });
    expect(server.customers.size).toBe(0);
    const result = await createTenant(withBilling(), { id, tier: 'pro', actor: 'test' });
    expect(result.steps.find((s) => s.step === 'billing')?.action).toBe('applied');
    const link = (await readLink(fx.pool, id))!;
    expect(server.customers.get(link.customerId)?.metadata).toEqual({ tenant: id, env: 'dev' });
    expect(subscriptionPrices(link.subscriptionId!)).toEqual(
      ['agent_minutes', 'api_calls', 'base'].map((k) => lookupKey('pro', k as 'base')).sort(),
    );
    const again = await createTenant(withBilling(), { id, tier: 'pro', actor: 'test' });
    expect(again.steps.find((s) => s.step === 'billing')?.action).toBe('unchanged');
    expect(server.customers.size).toBe(1);
    expect(server.subscriptions.size).toBe(1);

    const moved = await changeTier(withBilling(), { id, tier: 'enterprise', actor: 'test' });
    expect(stepLines(moved.steps)).toContain(
      `billing: subscription ${link.subscriptionId} items -> tier enterprise`,
    );
    expect(subscriptionPrices(link.subscriptionId!)).toEqual(
      ['agent_minutes', 'api_calls', 'base'].map((k) => lookupKey('enterprise', k as 'base')).sort(),
    );

    const offboarded = await offboardTenant(withBilling(), id, {
      actor: 'test',
      reason: 'contract ended',
      archiveDir,
    });
    expect(stepLines(offboarded.steps)).toContain(
      `billing: end subscription ${link.subscriptionId} at the end of its period`,
    );
    expect(server.subscriptions.get(link.subscriptionId!)).toMatchObject({
      cancel_at_period_end: true,
      status: 'active',
    });
    expect((await readLink(fx.pool, id))?.closingAt).toBeInstanceOf(Date);
  });

  it('links an existing customer given with --stripe-customer', async () => {
    const existing = await stripe.customers.create({ name: 'Acme Corp' });
    const id = fx.tenantId('bill-given');
    await createTenant(withBilling(existing.id), { id, tier: 'starter', actor: 'test' });
    expect((await readLink(fx.pool, id))?.customerId).toBe(existing.id);
    // The one from the first test and the given one: no new customer.
    expect(server.customers.size).toBe(2);
  });

  it('refuses a customer Stripe does not have, in one line, and leaves the tenant provisioning', async () => {
    const id = fx.tenantId('bill-nope');
    await expect(
      createTenant(withBilling('cus_doesnotexist'), { id, tier: 'starter', actor: 'test' }),
    ).rejects.toThrow(/^Stripe customer cus_doesnotexist does not exist: Stripe 404/);
    expect(await readLink(fx.pool, id)).toBeNull();
    const { rows } = await fx.pool.query('SELECT status::text FROM control.tenants WHERE id = $1', [id]);
    expect(rows).toEqual([{ status: 'provisioning' }]);
  });

  it('onboards without billing when no Stripe key is set, and needs the key to link a customer', () => {
    expect(billingDepsFor(env, undefined, {})).toEqual({});
    expect(() => billingDepsFor(env, 'cus_abc', {})).toThrow('STRIPE_API_KEY is not set');
    expect(() => billingDepsFor(env, 'acme', { STRIPE_API_KEY: 'sk_test_x' })).toThrow(
      "'--stripe-customer' (acme) must be a Stripe customer id (cus_…)",
    );
    expect(() => billingDepsFor(env, undefined, { STRIPE_API_KEY: 'sk_live_x' })).toThrow(
      "environment 'dev' refuses a live Stripe key",
    );
  });
});

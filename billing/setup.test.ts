import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { TIERS } from '../tenants/tiers.ts';
import { createStripeClient } from './config.ts';
import { centsDecimal, lookupKey, priceSpecs } from './meters.ts';
import { setupBilling } from './setup.ts';
import { TEST_RETRY } from './testing/fixture.ts';
import { StripeContractServer } from './testing/stripe-server.ts';

const env = loadEnvironmentConfig('dev');
let server: StripeContractServer;
let stripe: ReturnType<typeof createStripeClient>;

beforeEach(async () => {
  server = new StripeContractServer();
  const url = new URL(await server.start());
  stripe = createStripeClient({
    apiKey: server.apiKey,
    api: { host: url.hostname, port: Number(url.port), protocol: 'http' },
    reconcileTolerance: 0,
  });
});
afterEach(async () => {
  await server.stop();
});

describe('billing setup', () => {
  it('shows the whole plan on a dry run and creates nothing', async () => {
    const result = await setupBilling(stripe, env, { dryRun: true, retry: TEST_RETRY });
    expect(result.changes).toEqual([
      'create meter agent_minutes (sum, pre-aggregated hourly)',
      'create meter api_calls (sum, pre-aggregated hourly)',
      ...TIERS.map((t) => `create product agent-platform-${t.name}`),
      ...priceSpecs().map((s) => `create price ${s.lookupKey}`),
    ]);
    expect(server.meters.size + server.products.size + server.prices.size).toBe(0);
  });

  it("declares both meters and each tier's prices from the tier catalog, and a second run changes nothing", async () => {
    const first = await setupBilling(stripe, env, { retry: TEST_RETRY });
    expect(first.changes).toHaveLength(2 + TIERS.length + TIERS.length * 3);
    const meters = [...server.meters.values()];
    expect(
      meters.map((m) => [
        m.event_name,
        m.event_time_window,
        (m.default_aggregation as { formula: string }).formula,
      ]),
    ).toEqual([
      ['agent_minutes', 'hour', 'sum'],
      ['api_calls', 'hour', 'sum'],
    ]);
    const pro = TIERS.find((t) => t.name === 'pro')!;
    const prices = [...server.prices.values()];
    const base = prices.find((p) => p.lookup_key === lookupKey('pro', 'base'))!;
    expect(base).toMatchObject({
      unit_amount: pro.priceUsdMonthly * 100,
      recurring: { usage_type: 'licensed', interval: 'month' },
    });
    const minutes = prices.find((p) => p.lookup_key === lookupKey('pro', 'agent_minutes'))!;
    expect(minutes).toMatchObject({
      billing_scheme: 'tiered',
      tiers_mode: 'graduated',
      recurring: { usage_type: 'metered', meter: first.meters.agent_minutes },
      tiers: [
        { up_to: pro.agentMinutesPerMonth, unit_amount_decimal: '0' },
        { up_to: null, unit_amount_decimal: centsDecimal(pro.overageUsd.agentMinute) },
      ],
    });
    const second = await setupBilling(stripe, env, { retry: TEST_RETRY });
    expect(second.changes).toEqual([]);
    expect(second.meters).toEqual(first.meters);
    expect(server.prices.size).toBe(TIERS.length * 3);
  });

  it('replaces a changed tier price: the new price takes the lookup key and the old one is archived', async () => {
    await setupBilling(stripe, env, { retry: TEST_RETRY });
    const old = [...server.prices.values()].find((p) => p.lookup_key === lookupKey('pro', 'base'))!;
    const tiers = TIERS.map((t) => (t.name === 'pro' ? { ...t, priceUsdMonthly: 59 } : t));
    const result = await setupBilling(stripe, env, { retry: TEST_RETRY, tiers });
    expect(result.changes).toEqual([`replace price agent-platform-pro-base (${old.id}): tier changed`]);
    expect(old).toMatchObject({ active: false, lookup_key: null });
    const current = [...server.prices.values()].find((p) => p.lookup_key === lookupKey('pro', 'base'))!;
    expect(current.unit_amount).toBe(5900);
  });

  it('stops with one line when a meter exists with other settings, since meters cannot change', async () => {
    await stripe.billing.meters.create({
      display_name: 'old',
      event_name: 'agent_minutes',
      default_aggregation: { formula: 'sum' },
    });
    await expect(setupBilling(stripe, env, { retry: TEST_RETRY })).rejects.toThrow(
      /^meter 'agent_minutes' \(mtr_\w+\) differs and meters cannot change: event_time_window is 'null', not 'hour'; deactivate it/,
    );
    expect(server.prices.size).toBe(0);
  });

  it('writes cents with at most 12 decimals and no exponent', () => {
    expect(centsDecimal(0.00006)).toBe('0.006');
    expect(centsDecimal(0.012)).toBe('1.2');
    expect(centsDecimal(0)).toBe('0');
    expect(centsDecimal(0.0000001)).toBe('0.00001');
  });
});

import Stripe from 'stripe';
import type { EnvironmentConfig } from '../config/environments.ts';
import { TIERS, type Tier } from '../tenants/tiers.ts';
import { BillingStateError } from './errors.ts';
import { METER_SETTINGS, METERS, type MeterKey, type PriceSpec, priceSpecs, productId } from './meters.ts';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from './retry.ts';

export interface SetupResult {
  readonly env: string;
  readonly dryRun: boolean;
  /** What was (or, on a dry run, would be) created or changed, one line each; empty when in sync. */
  readonly changes: string[];
  /** Meter ids by meter; null for a meter a dry run would create. */
  readonly meters: Record<MeterKey, string | null>;
}

/** Reads the active meters, with their ids by event name. */
export async function activeMeters(
  stripe: Stripe,
  retry: RetryPolicy = DEFAULT_RETRY,
): Promise<Stripe.Billing.Meter[]> {
  const meters: Stripe.Billing.Meter[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const page = await withRetry(
      () =>
        stripe.billing.meters.list({
          status: 'active',
          limit: 100,
          ...(startingAfter ? { starting_after: startingAfter } : {}),
        }),
      retry,
    );
    meters.push(...page.data);
    if (!page.has_more || page.data.length === 0) return meters;
    startingAfter = page.data[page.data.length - 1]!.id;
  }
}

/** Differences between a meter and the settings billing relies on; a meter cannot change after creation. */
function meterDrift(meter: Stripe.Billing.Meter): string[] {
  const drift: string[] = [];
  if (meter.default_aggregation.formula !== METER_SETTINGS.formula)
    drift.push(
      `default_aggregation.formula is '${meter.default_aggregation.formula}', not '${METER_SETTINGS.formula}'`,
    );
  if (meter.event_time_window !== METER_SETTINGS.eventTimeWindow)
    drift.push(`event_time_window is '${meter.event_time_window}', not '${METER_SETTINGS.eventTimeWindow}'`);
  if (meter.customer_mapping.event_payload_key !== METER_SETTINGS.customerPayloadKey)
    drift.push(`customer_mapping.event_payload_key is '${meter.customer_mapping.event_payload_key}'`);
  if (meter.value_settings.event_payload_key !== METER_SETTINGS.valuePayloadKey)
    drift.push(`value_settings.event_payload_key is '${meter.value_settings.event_payload_key}'`);
  return drift;
}

function priceParams(spec: PriceSpec, meterId: string): Stripe.PriceCreateParams {
  const common = {
    currency: 'usd',
    product: productId(spec.tier),
    lookup_key: spec.lookupKey,
    transfer_lookup_key: true,
    nickname: spec.nickname,
    metadata: { fingerprint: spec.fingerprint, tier: spec.tier, kind: spec.kind },
  };
  if (spec.metered === null) {
    return {
      ...common,
      unit_amount: spec.monthlyCents!,
      recurring: { interval: 'month', usage_type: 'licensed' },
    };
  }
  return {
    ...common,
    recurring: { interval: 'month', usage_type: 'metered', meter: meterId },
    billing_scheme: 'tiered',
    tiers_mode: 'graduated',
    tiers: [
      { up_to: spec.metered.included, unit_amount_decimal: Stripe.Decimal.from('0') },
      { up_to: 'inf', unit_amount_decimal: Stripe.Decimal.from(spec.metered.overageCents) },
    ],
  };
}

/** The active prices holding billing's lookup keys, by lookup key. */
export async function pricesByLookupKey(
  stripe: Stripe,
  lookupKeys: readonly string[],
  retry: RetryPolicy = DEFAULT_RETRY,
): Promise<Map<string, Stripe.Price>> {
  const found = new Map<string, Stripe.Price>();
  // Stripe filters up to 10 lookup keys in one list request.
  for (let i = 0; i < lookupKeys.length; i += 10) {
    const page = await withRetry(
      () => stripe.prices.list({ lookup_keys: lookupKeys.slice(i, i + 10), active: true, limit: 100 }),
      retry,
    );
    for (const price of page.data) if (price.lookup_key) found.set(price.lookup_key, price);
  }
  return found;
}

/**
 * Declares the meters (agent-minutes, API calls), one product per tier and its three prices (monthly fee and
 * two metered prices), all from tenants/tiers.ts. A second run changes nothing. A changed tier price gets a new
 * Stripe price that takes over the lookup key (prices are immutable); the old one is archived.
 */
export async function setupBilling(
  stripe: Stripe,
  env: EnvironmentConfig,
  options: {
    readonly dryRun?: boolean;
    readonly retry?: RetryPolicy;
    /** @default TIERS (tenants/tiers.ts) */
    readonly tiers?: readonly Tier[];
  } = {},
): Promise<SetupResult> {
  const dryRun = options.dryRun ?? false;
  const retry = options.retry ?? DEFAULT_RETRY;
  const changes: string[] = [];
  const meterIds = {} as Record<MeterKey, string | null>;
  const existing = await activeMeters(stripe, retry);
  for (const meter of METERS) {
    const found = existing.find((m) => m.event_name === meter.eventName);
    if (found) {
      const drift = meterDrift(found);
      if (drift.length > 0)
        throw new BillingStateError(
          `meter '${meter.eventName}' (${found.id}) differs and meters cannot change: ${drift.join('; ')}; deactivate it in the Stripe dashboard and run setup again`,
        );
      meterIds[meter.key] = found.id;
      continue;
    }
    changes.push(`create meter ${meter.eventName} (sum, pre-aggregated hourly)`);
    meterIds[meter.key] = dryRun
      ? null
      : (
          await withRetry(
            () =>
              stripe.billing.meters.create(
                {
                  display_name: meter.displayName,
                  event_name: meter.eventName,
                  default_aggregation: { formula: METER_SETTINGS.formula },
                  event_time_window: METER_SETTINGS.eventTimeWindow,
                  customer_mapping: { type: 'by_id', event_payload_key: METER_SETTINGS.customerPayloadKey },
                  value_settings: { event_payload_key: METER_SETTINGS.valuePayloadKey },
                },
                { idempotencyKey: `billing-setup:${env.name}:meter:${meter.eventName}` },
              ),
            retry,
          )
        ).id;
  }
  const tiers = options.tiers ?? TIERS;
  for (const tier of tiers) {
    const id = productId(tier.name);
    try {
      await withRetry(() => stripe.products.retrieve(id), retry);
    } catch (error) {
      if (!(error instanceof Stripe.errors.StripeInvalidRequestError && error.statusCode === 404))
        throw error;
      changes.push(`create product ${id}`);
      if (!dryRun) {
        await withRetry(
          () =>
            stripe.products.create({
              id,
              name: `Agent platform ${tier.name}`,
              metadata: { tier: tier.name, env: env.name },
            }),
          retry,
        );
      }
    }
  }
  const specs = priceSpecs(tiers);
  const prices = await pricesByLookupKey(
    stripe,
    specs.map((s) => s.lookupKey),
    retry,
  );
  for (const spec of specs) {
    const current = prices.get(spec.lookupKey);
    const meterId = spec.metered ? meterIds[spec.metered.meter] : null;
    if (
      current?.metadata.fingerprint === spec.fingerprint &&
      (!spec.metered || current.recurring?.meter === meterId)
    )
      continue;
    changes.push(
      current
        ? `replace price ${spec.lookupKey} (${current.id}): tier changed`
        : `create price ${spec.lookupKey}`,
    );
    if (dryRun) continue;
    await withRetry(
      () =>
        stripe.prices.create(priceParams(spec, meterId ?? ''), {
          idempotencyKey: `billing-setup:${env.name}:price:${spec.lookupKey}:${spec.fingerprint}`,
        }),
      retry,
    );
    if (current) await withRetry(() => stripe.prices.update(current.id, { active: false }), retry);
  }
  return { env: env.name, dryRun, changes, meters: meterIds };
}

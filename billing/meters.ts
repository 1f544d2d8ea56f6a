import { createHash } from 'node:crypto';
import { TIERS, type Tier } from '../tenants/tiers.ts';

/**
 * The two meters. Both are pre-aggregated per hour (`event_time_window: hour`): each event carries an hour's
 * whole total and "a newer event sent within the same hourly window overwrites the previous one"
 * (docs.stripe.com/billing/subscriptions/usage-based/recording-usage), which is how a late increase corrects
 * an hour already sent.
 */
export const METERS = [
  { key: 'agent_minutes', eventName: 'agent_minutes', displayName: 'Agent minutes', usage: 'agentMinutes' },
  { key: 'api_calls', eventName: 'api_calls', displayName: 'API calls', usage: 'apiCalls' },
] as const;
export type MeterKey = (typeof METERS)[number]['key'];
export const METER_KEYS = METERS.map((m) => m.key) as readonly MeterKey[];

/** The meter settings billing relies on; Stripe meters cannot change after creation. */
export const METER_SETTINGS = {
  formula: 'sum',
  eventTimeWindow: 'hour',
  customerPayloadKey: 'stripe_customer_id',
  valuePayloadKey: 'value',
} as const;

export type PriceKind = 'base' | MeterKey;

/** One Stripe price as tenants/tiers.ts defines it. */
export interface PriceSpec {
  readonly tier: Tier['name'];
  readonly kind: PriceKind;
  readonly lookupKey: string;
  readonly nickname: string;
  /** Licensed monthly fee in cents (base), or null for a metered price. */
  readonly monthlyCents: number | null;
  /** Metered: units included in the fee (free), then the overage price per unit in cents. */
  readonly metered: {
    readonly meter: MeterKey;
    readonly included: number;
    readonly overageCents: string;
  } | null;
  /** sha256 of the fields above: setup compares it with the price's metadata to see a change. */
  readonly fingerprint: string;
}

export const productId = (tier: string) => `agent-platform-${tier}`;
export const lookupKey = (tier: string, kind: PriceKind) =>
  `agent-platform-${tier}-${kind.replace('_', '-')}`;

/** Cents as Stripe's unit_amount_decimal wants them: at most 12 decimals, no exponent. */
export function centsDecimal(usd: number): string {
  return (
    Number((usd * 100).toFixed(12))
      .toFixed(12)
      .replace(/\.?0+$/, '') || '0'
  );
}

function spec(tier: Tier, kind: PriceKind): PriceSpec {
  const base = kind === 'base';
  const meter: MeterKey = kind === 'agent_minutes' ? 'agent_minutes' : 'api_calls';
  const fields = {
    tier: tier.name,
    kind,
    lookupKey: lookupKey(tier.name, kind),
    nickname: `${tier.name} ${base ? 'monthly fee' : `${kind.replace('_', ' ')} past the included amount`}`,
    monthlyCents: base ? Math.round(tier.priceUsdMonthly * 100) : null,
    metered: base
      ? null
      : {
          meter,
          included: meter === 'agent_minutes' ? tier.agentMinutesPerMonth : tier.apiCallsPerMonth,
          overageCents: centsDecimal(
            meter === 'agent_minutes' ? tier.overageUsd.agentMinute : tier.overageUsd.apiCall,
          ),
        },
  } as const;
  const fingerprint = createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 32);
  return { ...fields, fingerprint };
}

/** Every price of every tier: a monthly fee and one metered price per meter. */
export function priceSpecs(tiers: readonly Tier[] = TIERS): PriceSpec[] {
  return tiers.flatMap((tier) => (['base', ...METER_KEYS] as const).map((kind) => spec(tier, kind)));
}

import type pg from 'pg';
import Stripe from 'stripe';
import type { EnvironmentConfig } from '../config/environments.ts';
import type { Step } from '../tenants/lifecycle/steps.ts';
import type { Tier } from '../tenants/tiers.ts';
import { createStripeClient, loadBillingConfig } from './config.ts';
import { BillingConfigError, BillingStateError } from './errors.ts';
import { lookupKey, type PriceKind } from './meters.ts';
import { DEFAULT_RETRY, describeStripeError, type RetryPolicy, withRetry } from './retry.ts';
import { pricesByLookupKey } from './setup.ts';

/** What onboarding and offboarding need to reach Stripe; without it their billing step is skipped. */
export interface BillingDeps {
  readonly stripe: Stripe;
  /** An existing Stripe customer to link (`--stripe-customer`). @default - onboarding creates one */
  readonly customerId?: string;
  /** @default DEFAULT_RETRY */
  readonly retry?: RetryPolicy;
}

export interface CustomerLink {
  readonly tenantId: string;
  readonly customerId: string;
  readonly subscriptionId: string | null;
  readonly closingAt: Date | null;
}

const CUSTOMER_ID = /^cus_[A-Za-z0-9]+$/;

/** Checks the shape of a customer id given on the command line; one line naming the value. */
export function parseCustomerId(value: string): string {
  if (!CUSTOMER_ID.test(value))
    throw new BillingStateError(`'--stripe-customer' (${value}) must be a Stripe customer id (cus_…)`);
  return value;
}

export async function readLink(db: pg.Pool | pg.ClientBase, tenantId: string): Promise<CustomerLink | null> {
  const { rows } = await db.query<{
    stripe_customer_id: string;
    stripe_subscription_id: string | null;
    closing_at: Date | null;
  }>(
    'SELECT stripe_customer_id, stripe_subscription_id, closing_at FROM control.billing_customers WHERE tenant_id = $1',
    [tenantId],
  );
  const row = rows[0];
  return row
    ? {
        tenantId,
        customerId: row.stripe_customer_id,
        subscriptionId: row.stripe_subscription_id,
        closingAt: row.closing_at,
      }
    : null;
}

const KINDS: readonly PriceKind[] = ['base', 'agent_minutes', 'api_calls'];

/** The tier's three active prices, or a one-line error when setup has not declared them. */
async function tierPrices(billing: BillingDeps, env: EnvironmentConfig, tier: Tier): Promise<Stripe.Price[]> {
  const keys = KINDS.map((k) => lookupKey(tier.name, k));
  const found = await pricesByLookupKey(billing.stripe, keys, billing.retry);
  const missing = keys.filter((k) => !found.has(k));
  if (missing.length > 0)
    throw new BillingStateError(
      `Stripe has no price ${missing.join(', ')}: run \`npm run billing -- setup --env ${env.name}\` first`,
    );
  return keys.map((k) => found.get(k)!);
}

interface ProvisionCtx {
  readonly deps: { readonly env: EnvironmentConfig; readonly billing?: BillingDeps };
  readonly db: pg.Pool | pg.PoolClient;
  readonly id: string;
  readonly tier: Tier;
}

/** The subscription's prices, when they are not exactly the tier's. */
async function itemDrift(billing: BillingDeps, env: EnvironmentConfig, tier: Tier, subscriptionId: string) {
  const retry = billing.retry ?? DEFAULT_RETRY;
  const [subscription, wanted] = await Promise.all([
    withRetry(() => billing.stripe.subscriptions.retrieve(subscriptionId), retry),
    tierPrices(billing, env, tier),
  ]);
  const held = subscription.items.data;
  const extra = held.filter((i) => !wanted.some((p) => p.id === i.price.id));
  const absent = wanted.filter((p) => !held.some((i) => i.price.id === p.id));
  return { extra, absent };
}

/**
 * Onboarding: links the tenant to a Stripe customer (the one given, checked to exist, or a new one) and
 * subscribes it to its tier's prices; on a tier change, swaps the subscription's items. Every create carries
 * an idempotency key derived from the tenant, so a rerun after a crash finds what the first run made.
 */
export const billingCustomerStep: Step<ProvisionCtx, 'billing'> = {
  name: 'billing',
  async plan(ctx) {
    const billing = ctx.deps.billing;
    if (!billing) return null;
    const link = await readLink(ctx.db, ctx.id);
    if (link && billing.customerId && link.customerId !== billing.customerId)
      throw new BillingStateError(
        `tenant '${ctx.id}' is linked to Stripe customer ${link.customerId}, not ${billing.customerId}: unlink it by hand first`,
      );
    const changes: string[] = [];
    if (!link)
      changes.push(
        billing.customerId ? `link Stripe customer ${billing.customerId}` : 'create Stripe customer',
      );
    if (!link?.subscriptionId)
      changes.push(`subscribe to tier ${ctx.tier.name} (monthly fee, agent minutes, API calls)`);
    else if (!link.closingAt) {
      const { extra, absent } = await itemDrift(billing, ctx.deps.env, ctx.tier, link.subscriptionId);
      if (extra.length + absent.length > 0)
        changes.push(`subscription ${link.subscriptionId} items -> tier ${ctx.tier.name}`);
    }
    return changes;
  },
  async apply(ctx, planned) {
    const billing = ctx.deps.billing!;
    const retry = billing.retry ?? DEFAULT_RETRY;
    const env = ctx.deps.env.name;
    let link = await readLink(ctx.db, ctx.id);
    if (!link) {
      let customerId: string;
      try {
        customerId = billing.customerId
          ? (await withRetry(() => billing.stripe.customers.retrieve(billing.customerId!), retry)).id
          : (
              await withRetry(
                () =>
                  billing.stripe.customers.create(
                    { name: ctx.id, metadata: { tenant: ctx.id, env } },
                    { idempotencyKey: `tenant-customer:${env}:${ctx.id}` },
                  ),
                retry,
              )
            ).id;
      } catch (error) {
        if (error instanceof Stripe.errors.StripeInvalidRequestError && error.statusCode === 404)
          throw new BillingStateError(
            `Stripe customer ${billing.customerId} does not exist: ${describeStripeError(error)}`,
          );
        throw error;
      }
      await ctx.db.query(
        `INSERT INTO control.billing_customers (tenant_id, stripe_customer_id) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO NOTHING`,
        [ctx.id, customerId],
      );
      link = (await readLink(ctx.db, ctx.id))!;
    }
    const prices = await tierPrices(billing, ctx.deps.env, ctx.tier);
    if (!link.subscriptionId) {
      const subscription = await withRetry(
        () =>
          billing.stripe.subscriptions.create(
            {
              customer: link!.customerId,
              items: prices.map((p) =>
                p.recurring?.usage_type === 'metered' ? { price: p.id } : { price: p.id, quantity: 1 },
              ),
              metadata: { tenant: ctx.id, env, tier: ctx.tier.name },
            },
            { idempotencyKey: `tenant-subscription:${env}:${ctx.id}` },
          ),
        retry,
      );
      await ctx.db.query(
        'UPDATE control.billing_customers SET stripe_subscription_id = $2, updated_at = now() WHERE tenant_id = $1',
        [ctx.id, subscription.id],
      );
    } else if (planned.some((c) => c.includes('items ->'))) {
      const { extra, absent } = await itemDrift(billing, ctx.deps.env, ctx.tier, link.subscriptionId);
      await withRetry(
        () =>
          billing.stripe.subscriptions.update(link!.subscriptionId!, {
            items: [
              ...extra.map((i) => ({ id: i.id, deleted: true })),
              ...absent.map((p) =>
                p.recurring?.usage_type === 'metered' ? { price: p.id } : { price: p.id, quantity: 1 },
              ),
            ],
            metadata: { tier: ctx.tier.name },
          }),
        retry,
      );
    }
    return planned;
  },
};

interface OffboardCtx {
  readonly deps: { readonly billing?: BillingDeps };
  readonly db: pg.Pool | pg.PoolClient;
  readonly id: string;
}

/**
 * Offboarding: ends the tenant's subscription at the end of its current period, so the usage of that
 * period is still invoiced; the link stays for reconcile and the export of the last hours.
 */
export const billingCloseStep: Step<OffboardCtx, 'billing'> = {
  name: 'billing',
  async plan(ctx) {
    if (!ctx.deps.billing) return null;
    const link = await readLink(ctx.db, ctx.id);
    if (!link?.subscriptionId || link.closingAt) return [];
    return [`end subscription ${link.subscriptionId} at the end of its period`];
  },
  async apply(ctx, planned) {
    const billing = ctx.deps.billing!;
    const link = (await readLink(ctx.db, ctx.id))!;
    await withRetry(
      () => billing.stripe.subscriptions.update(link.subscriptionId!, { cancel_at_period_end: true }),
      billing.retry ?? DEFAULT_RETRY,
    );
    await ctx.db.query(
      'UPDATE control.billing_customers SET closing_at = now(), updated_at = now() WHERE tenant_id = $1',
      [ctx.id],
    );
    return planned;
  },
};

/**
 * The billing part of onboarding's dependencies: on when STRIPE_API_KEY is set or a customer is given (which
 * then needs the key); off otherwise, so environments without Stripe onboard as before.
 */
export function billingDepsFor(
  env: EnvironmentConfig,
  customerId?: string,
  source: NodeJS.ProcessEnv = process.env,
): { billing?: BillingDeps } {
  if (customerId !== undefined) parseCustomerId(customerId);
  if (!source.STRIPE_API_KEY) {
    if (customerId !== undefined)
      throw new BillingConfigError(
        'STRIPE_API_KEY is not set: linking a Stripe customer needs the Stripe secret key',
      );
    return {};
  }
  const stripe = createStripeClient(loadBillingConfig(env, source));
  return { billing: { stripe, ...(customerId === undefined ? {} : { customerId }) } };
}

import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type pg from 'pg';
import StripeSdk, { type Stripe } from 'stripe';
import { z } from 'zod';
import { alarmTopicArn, type EnvironmentConfig } from '../config/environments.ts';
import { BillingConfigError, BillingStateError } from './errors.ts';
import { exportRange } from './export.ts';
import { METERS, type MeterKey } from './meters.ts';
import { formatQuantity, parseQuantity } from './quantity.ts';
import { DEFAULT_RETRY, describeStripeError, type RetryPolicy, withRetry } from './retry.ts';
import { activeMeters } from './setup.ts';
import type { UsageSource } from './usage-source.ts';

const monthSchema = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/);

/** The month as a UTC range; one line for a bad value. */
export function monthRange(month: string): { from: Date; to: Date } {
  if (!monthSchema.safeParse(month).success)
    throw new BillingConfigError(`'--month' (${month}) must be yyyy-mm`);
  const [y, m] = month.split('-').map(Number);
  return { from: new Date(Date.UTC(y!, m! - 1, 1)), to: new Date(Date.UTC(y!, m!, 1)) };
}

export interface Difference {
  readonly tenantId: string;
  readonly meter: MeterKey;
  /** Our metering, decimal text. */
  readonly ours: string;
  /** Stripe's meter event summary; null when the tenant has no Stripe customer. */
  readonly stripe: string | null;
  /** stripe - ours. */
  readonly difference: string;
  readonly overTolerance: boolean;
}

export interface ReconcileResult {
  readonly month: string;
  /** The compared range: the month, up to the last hour an export may have sent. */
  readonly from: string;
  readonly to: string;
  readonly tolerance: number;
  readonly tenants: number;
  readonly compared: number;
  /** Every non-zero difference, and every tenant with usage and no Stripe customer. */
  readonly differences: Difference[];
  /** Totals Stripe would not give (a 4xx for that customer), one line each; each counts past the tolerance. */
  readonly problems: string[];
  readonly overTolerance: number;
  readonly notified: boolean;
  /** Invoiced revenue found for the month, USD, by tenant (what the cost report shows as billed). */
  readonly revenue: Record<string, number>;
}

export interface ReconcileDeps {
  readonly pool: pg.Pool;
  readonly stripe: Stripe;
  readonly env: EnvironmentConfig;
  readonly usage: UsageSource;
  /** Publishes to the alarm topic when a difference passes the tolerance. @default - no notification */
  readonly sns?: SNSClient;
  readonly retry?: RetryPolicy;
  readonly now?: () => Date;
}

const toMilli = (value: number) => BigInt(Math.round(value * 1000));

/** Sums the tenant's invoices created in the month (paid or open), in cents. */
async function invoicedCents(
  stripe: Stripe,
  customer: string,
  range: { from: Date; to: Date },
  retry: RetryPolicy,
) {
  let cents = 0;
  let count = 0;
  let startingAfter: string | undefined;
  for (;;) {
    const page = await withRetry(
      () =>
        stripe.invoices.list({
          customer,
          created: { gte: range.from.getTime() / 1000, lt: range.to.getTime() / 1000 },
          limit: 100,
          ...(startingAfter ? { starting_after: startingAfter } : {}),
        }),
      retry,
    );
    for (const invoice of page.data) {
      if (invoice.status !== 'paid' && invoice.status !== 'open') continue;
      cents += invoice.total;
      count += 1;
    }
    if (!page.has_more || page.data.length === 0) return { cents, count };
    startingAfter = page.data[page.data.length - 1]!.id;
  }
}

/**
 * Compares our totals per tenant and meter with Stripe's meter event summaries for the month, lists every
 * difference, stores the run, records the invoiced revenue, and notifies the alarm topic when a difference
 * is larger than `tolerance` (a fraction of our total).
 */
export async function reconcileMonth(
  deps: ReconcileDeps,
  month: string,
  options: { readonly tolerance: number },
): Promise<ReconcileResult> {
  const retry = deps.retry ?? DEFAULT_RETRY;
  const month_ = monthRange(month);
  const now = (deps.now ?? (() => new Date()))();
  const closed = exportRange(now).to;
  const range = { from: month_.from, to: closed < month_.to ? closed : month_.to };
  if (range.to <= range.from) throw new BillingConfigError(`month ${month} has no closed hour yet`);
  const meters = new Map((await activeMeters(deps.stripe, retry)).map((m) => [m.event_name, m.id]));
  for (const meter of METERS) {
    if (!meters.has(meter.eventName))
      throw new BillingStateError(
        `Stripe has no meter '${meter.eventName}': run \`npm run billing -- setup --env ${deps.env.name}\``,
      );
  }
  const totals = await deps.usage.totals(range);
  const { rows: links } = await deps.pool.query<{ tenant_id: string; stripe_customer_id: string }>(
    'SELECT tenant_id, stripe_customer_id FROM control.billing_customers ORDER BY tenant_id',
  );
  const customers = new Map(links.map((l) => [l.tenant_id, l.stripe_customer_id]));
  const tenants = [...new Set([...totals.keys(), ...customers.keys()])].sort();
  const differences: Difference[] = [];
  const revenue: Record<string, number> = {};
  const problems: string[] = [];
  let compared = 0;
  for (const tenantId of tenants) {
    const ours = totals.get(tenantId) ?? { agentMinutes: '0', apiCalls: '0' };
    const customer = customers.get(tenantId);
    for (const meter of METERS) {
      const oursMilli = parseQuantity(ours[meter.usage]) ?? 0n;
      if (!customer) {
        if (oursMilli > 0n) {
          differences.push({
            tenantId,
            meter: meter.key,
            ours: formatQuantity(oursMilli),
            stripe: null,
            difference: `-${formatQuantity(oursMilli)}`,
            overTolerance: true,
          });
        }
        continue;
      }
      compared += 1;
      let page: Stripe.ApiList<Stripe.Billing.MeterEventSummary>;
      try {
        page = await withRetry(
          () =>
            deps.stripe.billing.meters.listEventSummaries(meters.get(meter.eventName)!, {
              customer,
              start_time: range.from.getTime() / 1000,
              end_time: range.to.getTime() / 1000,
            }),
          retry,
        );
      } catch (error) {
        // A customer Stripe refuses is a difference to look at; a refused key stops the run.
        const status = error instanceof StripeSdk.errors.StripeError ? (error.statusCode ?? 0) : 0;
        if (status < 400 || status >= 500 || status === 401 || status === 403) throw error;
        problems.push(`tenant '${tenantId}' ${meter.key}: ${describeStripeError(error)}`);
        continue;
      }
      const stripeMilli = page.data.reduce((sum, s) => sum + toMilli(s.aggregated_value), 0n);
      const diff = stripeMilli - oursMilli;
      if (diff === 0n) continue;
      const magnitude = diff < 0n ? -diff : diff;
      const allowed = BigInt(Math.floor(options.tolerance * Number(oursMilli)));
      differences.push({
        tenantId,
        meter: meter.key,
        ours: formatQuantity(oursMilli),
        stripe: formatQuantity(stripeMilli),
        difference: `${diff < 0n ? '-' : '+'}${formatQuantity(magnitude)}`,
        overTolerance: magnitude > allowed,
      });
    }
    if (customer) {
      const invoiced = await invoicedCents(deps.stripe, customer, month_, retry);
      if (invoiced.count > 0) {
        revenue[tenantId] = invoiced.cents / 100;
        await deps.pool.query(
          `INSERT INTO control.billing_revenue (tenant_id, period, amount_usd, invoices) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, period) DO UPDATE
             SET amount_usd = EXCLUDED.amount_usd, invoices = EXCLUDED.invoices, fetched_at = now()`,
          [tenantId, month, invoiced.cents / 100, invoiced.count],
        );
      }
    }
  }
  const overTolerance = differences.filter((d) => d.overTolerance).length + problems.length;
  let notified = false;
  if (overTolerance > 0 && deps.sns) {
    await deps.sns.send(
      new PublishCommand({
        TopicArn: alarmTopicArn(deps.env),
        Subject:
          `[billing] ${deps.env.name} reconcile ${month}: ${overTolerance} difference(s) past tolerance`.slice(
            0,
            100,
          ),
        Message: JSON.stringify({
          source: 'billing-reconcile',
          env: deps.env.name,
          month,
          tolerance: options.tolerance,
          differences: differences.filter((d) => d.overTolerance).slice(0, 50),
          problems: problems.slice(0, 50),
        }),
      }),
    );
    notified = true;
  }
  await deps.pool.query(
    `INSERT INTO control.billing_reconcile_runs (month, tolerance, differences, over_tolerance, notified)
     VALUES ($1, $2, $3, $4, $5)`,
    [month, options.tolerance, JSON.stringify(differences), overTolerance, notified],
  );
  return {
    month,
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    tolerance: options.tolerance,
    tenants: tenants.length,
    compared,
    differences,
    problems,
    overTolerance,
    notified,
    revenue,
  };
}

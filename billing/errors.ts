import Stripe from 'stripe';
import { describeStripeError } from './retry.ts';

/** Bad billing configuration or input: one line, the run stops before it changes anything. */
export class BillingConfigError extends Error {
  override readonly name = 'BillingConfigError';
}

/** Stripe refused a request for one tenant (a 4xx other than 429): that tenant stops, the run goes on. */
export class BillingTenantError extends Error {
  override readonly name = 'BillingTenantError';
  constructor(
    readonly tenantId: string,
    message: string,
  ) {
    super(`tenant '${tenantId}': ${message}`);
  }
}

/** Stripe state the code cannot fix by itself (a meter that differs, prices not set up yet). */
export class BillingStateError extends Error {
  override readonly name = 'BillingStateError';
}

/** Another billing run holds the lock. */
export class BillingBusyError extends Error {
  override readonly name = 'BillingBusyError';
}

/** One line for an expected billing failure (bad setting, Stripe state, a Stripe refusal); undefined for a bug. */
export function billingFailure(error: unknown): string | undefined {
  if (
    error instanceof BillingConfigError ||
    error instanceof BillingStateError ||
    error instanceof BillingBusyError
  )
    return error.message;
  if (error instanceof BillingTenantError) return error.message;
  if (error instanceof Stripe.errors.StripeError) return describeStripeError(error);
  return undefined;
}

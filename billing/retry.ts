import Stripe from 'stripe';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 6, baseDelayMs: 500, maxDelayMs: 20_000 };

/** A 429, a 5xx or no answer at all: the request may succeed later. */
export function isTransient(error: unknown): boolean {
  if (error instanceof Stripe.errors.StripeRateLimitError) return true;
  if (error instanceof Stripe.errors.StripeConnectionError) return true;
  if (error instanceof Stripe.errors.StripeError)
    return (error.statusCode ?? 0) >= 500 || error.statusCode === 429;
  return false;
}

/** Exponential backoff with full jitter: a random wait between 0 and min(max, base * 2^attempt). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
}

/** Runs `call`, retrying transient Stripe failures with backoff and jitter; other errors pass through. */
export async function withRetry<T>(
  call: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (error: unknown, attempt: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= policy.retries || !isTransient(error)) throw error;
      onRetry?.(error, attempt + 1);
      await new Promise((resolve) => setTimeout(resolve, backoffMs(policy, attempt)));
    }
  }
}

/** One line for a Stripe error: status, type, code and message. */
export function describeStripeError(error: unknown): string {
  if (error instanceof Stripe.errors.StripeError) {
    const code = error.code ? `/${error.code}` : '';
    return `Stripe ${error.statusCode ?? 'no answer'} ${error.type}${code}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

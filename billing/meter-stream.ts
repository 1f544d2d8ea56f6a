import Stripe from 'stripe';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from './retry.ts';

/** Stripe takes up to 100 events in one meter event stream request (docs.stripe.com/api/v2/billing-meter-stream). */
export const STREAM_BATCH_LIMIT = 100;

/** Renew a session this long before Stripe's expiry, so no request carries a token about to lapse. */
const RENEW_BEFORE_MS = 60_000;

export interface MeterEvent {
  readonly event_name: string;
  readonly identifier: string;
  /** RFC 3339. */
  readonly timestamp: string;
  readonly payload: { readonly stripe_customer_id: string; readonly value: string };
}

const isSessionExpired = (error: unknown) => error instanceof Stripe.errors.TemporarySessionExpiredError;

/**
 * The v2 high-throughput meter event stream: a meter event session gives a token valid 15 minutes, and each
 * request carries up to 100 events under that token. Counts the requests it makes.
 */
export class MeterEventStream {
  private token: { value: string; expiresAt: number } | null = null;
  /** The session being created, shared by the batches that asked for it meanwhile. */
  private renewing: Promise<string> | null = null;
  requests = 0;

  constructor(
    private readonly stripe: Stripe,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly now: () => number = Date.now,
  ) {}

  private async session(): Promise<string> {
    if (this.token && this.token.expiresAt - RENEW_BEFORE_MS > this.now()) return this.token.value;
    this.renewing ??= (async () => {
      try {
        const session = await withRetry(() => this.stripe.v2.billing.meterEventSession.create(), this.retry);
        this.requests += 1;
        this.token = {
          value: session.authentication_token,
          expiresAt: Date.parse(String(session.expires_at)),
        };
        return this.token.value;
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /** Sends one batch; 429 and 5xx are retried with backoff and jitter, an expired session is renewed once. */
  async send(events: readonly MeterEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (events.length > STREAM_BATCH_LIMIT)
      throw new RangeError(
        `a stream request takes at most ${STREAM_BATCH_LIMIT} events, got ${events.length}`,
      );
    const attempt = async () => {
      const apiKey = await this.session();
      this.requests += 1;
      await this.stripe.v2.billing.meterEventStream.create(
        { events: events.map((e) => ({ ...e })) },
        { apiKey },
      );
    };
    try {
      await withRetry(attempt, this.retry);
    } catch (error) {
      if (!isSessionExpired(error)) throw error;
      this.token = null;
      await withRetry(attempt, this.retry);
    }
  }
}

import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bucketIdentifier, MAX_REVISION, revisionTimestamp } from './identifiers.ts';
import { formatQuantity, parseQuantity } from './quantity.ts';
import { backoffMs, DEFAULT_RETRY, withRetry } from './retry.ts';
import { TEST_RETRY } from './testing/fixture.ts';
import { StripeContractServer } from './testing/stripe-server.ts';

let server: StripeContractServer;
const client = (maxNetworkRetries: number) => {
  const url = new URL(server.url);
  return new Stripe(server.apiKey, {
    host: url.hostname,
    port: url.port,
    protocol: 'http',
    maxNetworkRetries,
  });
};
const rateLimit = { status: 429, type: 'rate_limit_error', code: 'rate_limit', message: 'Too many requests' };

beforeAll(async () => {
  server = new StripeContractServer();
  await server.start();
});
afterAll(async () => {
  await server.stop();
});
beforeEach(() => server.resetEvents());

describe("the SDK's own retries, which billing turns off", () => {
  it('retry a 503 but not a 429, so billing retries both itself', async () => {
    const sdk = client(2);
    server.inject({ match: /customers/, fault: { status: 503, type: 'api_error', message: 'unavailable' } });
    await expect(sdk.customers.create({ name: 'a' })).resolves.toMatchObject({ object: 'customer' });
    server.inject({ match: /customers/, fault: rateLimit });
    await expect(sdk.customers.create({ name: 'b' })).rejects.toBeInstanceOf(
      Stripe.errors.StripeRateLimitError,
    );
  });

  it('billing retries a 429 with backoff and gives up after its limit', async () => {
    const sdk = client(0);
    server.inject({ match: /customers/, fault: rateLimit, times: 2 });
    const retried: number[] = [];
    await expect(
      withRetry(
        () => sdk.customers.create({ name: 'c' }),
        TEST_RETRY,
        (_, attempt) => retried.push(attempt),
      ),
    ).resolves.toMatchObject({ object: 'customer' });
    expect(retried).toEqual([1, 2]);
    server.inject({ match: /customers/, fault: rateLimit, times: 10 });
    await expect(withRetry(() => sdk.customers.create({ name: 'd' }), TEST_RETRY)).rejects.toBeInstanceOf(
      Stripe.errors.StripeRateLimitError,
    );
  });

  it('does not retry a 400', async () => {
    const sdk = client(0);
    server.inject({
      match: /customers/,
      fault: { status: 400, type: 'invalid_request_error', message: 'bad' },
      times: 2,
    });
    let calls = 0;
    await expect(
      withRetry(() => {
        calls += 1;
        return sdk.customers.create({ name: 'e' });
      }, TEST_RETRY),
    ).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(calls).toBe(1);
  });
});

describe('backoff, quantities and identifiers', () => {
  it("derives the same identifier from tenant, meter, hour and revision, within Stripe's 100 characters", () => {
    const hour = new Date('2026-11-03T14:00:00Z');
    expect(bucketIdentifier('prod', 'acme', 'agent_minutes', hour, 0)).toBe(
      'ap-prod:acme:agent_minutes:2026-11-03T14Z:r0',
    );
    const longest = bucketIdentifier('staging', 'a'.repeat(30), 'agent_minutes', hour, MAX_REVISION);
    expect(longest).toHaveLength(76);
    expect(revisionTimestamp(hour, 2).toISOString()).toBe('2026-11-03T14:00:02.000Z');
  });

  it('waits a random time up to the doubling cap (full jitter)', () => {
    expect(backoffMs(DEFAULT_RETRY, 0, () => 1)).toBe(500);
    expect(backoffMs(DEFAULT_RETRY, 3, () => 1)).toBe(4000);
    expect(backoffMs(DEFAULT_RETRY, 10, () => 1)).toBe(20_000);
    expect(backoffMs(DEFAULT_RETRY, 3, () => 0.25)).toBe(1000);
  });

  it('reads non-negative decimals with at most 3 places and 15 digits, and nothing else', () => {
    expect(parseQuantity('12.5')).toBe(12500n);
    expect(formatQuantity(12500n)).toBe('12.5');
    expect(formatQuantity(parseQuantity('7.000')!)).toBe('7');
    for (const bad of ['-1', '1e3', 'NaN', '1.2345', '', ' 1', '1234567890123.456'])
      expect(parseQuantity(bad)).toBeNull();
    expect(parseQuantity('123456789012.345')).toBe(123456789012345n);
  });
});

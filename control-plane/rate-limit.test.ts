import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getTier } from '../tenants/tiers.ts';
import { bearer, type ControlPlaneFixture, createFixture } from './testing/fixture.ts';

let fx: ControlPlaneFixture;

beforeAll(async () => {
  fx = await createFixture('ratelimit');
});
afterAll(() => fx.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([
  ['Redis', undefined],
  ['memory', null],
] as const)('tenant rate limit (%s)', (_name, redis) => {
  test('serves exactly requestsPerSecond + burst in one second, then 429 with headers', async () => {
    const app = await fx.server({}, { redis });
    const t = await fx.tenant('free');
    const { requestsPerSecond, burst } = getTier('free').rateLimit;
    const statuses: number[] = [];
    for (let i = 0; i < requestsPerSecond + burst; i++) {
      statuses.push((await app.inject({ url: '/v1/me', headers: bearer(t.key) })).statusCode);
    }
    expect(statuses).toEqual(Array(requestsPerSecond + burst).fill(200));
    const refused = await app.inject({ url: '/v1/me', headers: bearer(t.key) });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toBe(
      `rate limit exceeded: tier 'free' allows ${requestsPerSecond} requests/s plus a burst of ${burst}`,
    );
    expect(refused.headers['ratelimit-limit']).toBe(String(requestsPerSecond));
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(Number(refused.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  test('never refuses a tenant that stays at requestsPerSecond', async () => {
    const app = await fx.server({}, { redis });
    const t = await fx.tenant('free');
    const { requestsPerSecond } = getTier('free').rateLimit;
    for (let second = 0; second < 2; second++) {
      const res = await Promise.all(
        Array.from({ length: requestsPerSecond }, () =>
          app.inject({ url: '/v1/me', headers: bearer(t.key) }),
        ),
      );
      expect(res.map((r) => r.statusCode)).toEqual(Array(requestsPerSecond).fill(200));
      expect(res.map((r) => r.headers['ratelimit-limit'])).toEqual(Array(requestsPerSecond).fill('5'));
      await sleep(1_050);
    }
  });

  test('limits each tenant on its own', async () => {
    const app = await fx.server({}, { redis });
    const [a, b] = [await fx.tenant('free'), await fx.tenant('free')];
    const { requestsPerSecond, burst } = getTier('free').rateLimit;
    for (let i = 0; i <= requestsPerSecond + burst; i++)
      await app.inject({ url: '/v1/me', headers: bearer(a.key) });
    expect((await app.inject({ url: '/v1/me', headers: bearer(a.key) })).statusCode).toBe(429);
    expect((await app.inject({ url: '/v1/me', headers: bearer(b.key) })).statusCode).toBe(200);
  });
});

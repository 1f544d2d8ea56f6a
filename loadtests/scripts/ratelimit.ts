// k6 suite 'ratelimit': one tenant bursts past its tier limit, another stays under it.
// The limit comes from GET /v1/me (the API reads tenants/tiers.ts), so nothing here restates it.
// The tier allows requestsPerSecond + burst requests within one second: a burst of that many
// is fully accepted, every request past it gets 429, and a tenant under its rate never sees 429.
// Run: k6 run --env BASE_URL=... loadtests/scripts/ratelimit.ts (OPERATOR_TOKEN in the environment).
import { check, sleep } from 'k6';
import http, { type RefinedResponse, type ResponseType } from 'k6/http';
import { Counter, Rate } from 'k6/metrics';
import {
  asTenant,
  baseUrl,
  createTenants,
  header,
  type RateLimit,
  readRateLimit,
  retireTenants,
  type TestTenant,
} from '../lib/api.ts';
import { newRunId } from '../lib/ids.ts';
import { summaryHandler } from '../lib/summary.ts';
import { SUITES, suiteOptions } from '../suites.ts';

export const options = suiteOptions('ratelimit');

const exactRounds = new Rate('ratelimit_exact');
const expected429 = new Counter('ratelimit_expected_429');
const unexpected429 = new Counter('ratelimit_unexpected_429');

// Past the limit a 429 is the right answer, so it must not count in http_req_failed.
const limitedIsExpected = http.expectedStatuses({ min: 200, max: 299 }, 429);

interface RateLimitData {
  /** Tenant pushed past its limit. */
  readonly hot: TestTenant;
  /** Tenant kept under its limit at the same time. */
  readonly calm: TestTenant;
  readonly limit: RateLimit;
}

export function setup(): RateLimitData {
  const [hot, calm] = createTenants(
    newRunId(),
    ['hot', 'calm'],
    __ENV.RATELIMIT_TIER || SUITES.ratelimit.tier,
  );
  const limit = readRateLimit(hot!);
  const calmLimit = readRateLimit(calm!);
  check(calmLimit, {
    'setup: both tenants report the same tier limit': (l) =>
      l.requestsPerSecond === limit.requestsPerSecond && l.burst === limit.burst,
  });
  // Let the window the setup calls opened run out before the first burst.
  sleep(1.2);
  return { hot: hot!, calm: calm!, limit };
}

function secondsUntilNextSecond(): number {
  return (1000 - (Date.now() % 1000)) / 1000;
}

/** One round: a burst of capacity + overshoot requests at once; exactly capacity must pass. */
export function atLimit(data: RateLimitData): void {
  const capacity = data.limit.requestsPerSecond + data.limit.burst;
  const overshoot = Math.max(3, Math.ceil(capacity / 4));
  // Start just after a second boundary so a fixed one-second window cannot split the burst.
  sleep(secondsUntilNextSecond() + 0.05);
  const params = asTenant(data.hot.key, data.hot.id, 'GET /v1/me', {
    responseCallback: limitedIsExpected,
    tags: { limit_role: 'hot' },
  });
  const url = `${baseUrl()}/v1/me`;
  const responses: RefinedResponse<ResponseType | undefined>[] = http.batch(
    Array.from({ length: capacity + overshoot }, () => ({ method: 'GET', url, params })),
  );
  const accepted = responses.filter((r) => r.status === 200).length;
  const limited = responses.filter((r) => r.status === 429);
  const other = responses.length - accepted - limited.length;
  expected429.add(limited.length, { tenant: data.hot.id });
  const exact = accepted === capacity && limited.length === overshoot && other === 0;
  exactRounds.add(exact, { tenant: data.hot.id });
  check(
    { accepted, limited: limited.length, other },
    {
      'at limit: exactly requestsPerSecond + burst requests accepted': (c) => c.accepted === capacity,
      'past limit: every further request refused with 429': (c) => c.limited === overshoot,
      'burst: no status other than 200 and 429': (c) => c.other === 0,
    },
    { tenant: data.hot.id },
  );
  check(
    limited,
    {
      '429: carries Retry-After and RateLimit-Limit/Remaining/Reset': (list) =>
        list.every(
          (r) =>
            header(r, 'Retry-After') !== undefined &&
            header(r, 'RateLimit-Limit') !== undefined &&
            header(r, 'RateLimit-Remaining') === '0' &&
            header(r, 'RateLimit-Reset') !== undefined,
        ),
    },
    { tenant: data.hot.id },
  );
  const retryAfter = Math.max(1, ...limited.map((r) => Number(header(r, 'Retry-After') ?? 1) || 1));
  sleep(retryAfter + 0.2);
}

/** The other tenant paces itself at half its sustained rate; it must never see 429. */
export function underLimit(data: RateLimitData): void {
  const res = http.get(
    `${baseUrl()}/v1/me`,
    asTenant(data.calm.key, data.calm.id, 'GET /v1/me', { tags: { limit_role: 'calm' } }),
  );
  if (res.status === 429) unexpected429.add(1, { tenant: data.calm.id });
  check(res, { 'under limit: 200, never 429': (r) => r.status === 200 }, { tenant: data.calm.id });
  sleep(2 / data.limit.requestsPerSecond);
}

export function teardown(data: RateLimitData): void {
  retireTenants([data.hot, data.calm]);
}

export const handleSummary = summaryHandler('ratelimit');

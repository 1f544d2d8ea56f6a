// k6 suite 'ratelimit': tenants burst past their tier limit while another stays under it.
// The limit comes from GET /v1/me (the API reads tenants/tiers.ts), so nothing here restates it.
// A tier allows requestsPerSecond plus a burst allowance on top: a fresh tenant's burst of that many
// requests is fully accepted, every request past it gets 429, and a tenant under its rate never sees 429.
// Each round uses its own fresh tenant, because the burst allowance refills more slowly than one second.
// Run: mkdir -p reports && k6 run --env BASE_URL=... loadtests/scripts/ratelimit.ts (OPERATOR_TOKEN in the env;
// k6 does not create the report directory). npm run load-gate does both for you.
import { check, fail, sleep } from 'k6';
import exec from 'k6/execution';
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
import { runIdFrom } from '../lib/ids.ts';
import { summaryHandler } from '../lib/summary.ts';
import { RATELIMIT_ROUNDS, SUITES, suiteOptions } from '../suites.ts';

export const options = suiteOptions('ratelimit');

const exactRounds = new Rate('ratelimit_exact');
const expected429 = new Counter('ratelimit_expected_429');
const unexpected429 = new Counter('ratelimit_unexpected_429');

// Past the limit a 429 is the right answer, so it must not count in http_req_failed.
const limitedIsExpected = http.expectedStatuses({ min: 200, max: 299 }, 429);

interface RateLimitData {
  /** One tenant per burst round. */
  readonly hot: readonly TestTenant[];
  /** Tenant kept under its limit while the others burst. */
  readonly calm: TestTenant;
  readonly limit: RateLimit;
}

export function setup(): RateLimitData {
  const roles = [...Array.from({ length: RATELIMIT_ROUNDS }, (_, i) => `hot${i + 1}`), 'calm'];
  const tenants = createTenants(runIdFrom(__ENV), roles, __ENV.RATELIMIT_TIER || SUITES.ratelimit.tier);
  const limits = tenants.map(readRateLimit);
  const limit = limits[0]!;
  if (limits.some((l) => l.requestsPerSecond !== limit.requestsPerSecond || l.burst !== limit.burst)) {
    fail(`setup: tenants of one tier report different limits: ${JSON.stringify(limits)}`);
  }
  // The GET /v1/me calls above used the current one-second window; start the bursts in a fresh one.
  sleep(1.2);
  return { hot: tenants.slice(0, RATELIMIT_ROUNDS), calm: tenants[RATELIMIT_ROUNDS]!, limit };
}

/** One round: a burst of capacity + overshoot requests at once; exactly capacity must pass. */
export function atLimit(data: RateLimitData): void {
  const tenant = data.hot[exec.vu.iterationInScenario % data.hot.length]!;
  const capacity = data.limit.requestsPerSecond + data.limit.burst;
  const overshoot = Math.max(3, Math.ceil(capacity / 4));
  const url = `${baseUrl()}/v1/me`;
  const params = asTenant(tenant.key, tenant.id, 'GET /v1/me', {
    responseCallback: limitedIsExpected,
    tags: { limit_role: 'hot' },
  });
  const responses: RefinedResponse<ResponseType | undefined>[] = http.batch(
    Array.from({ length: capacity + overshoot }, () => ({ method: 'GET', url, params })),
  );
  const accepted = responses.filter((r) => r.status === 200).length;
  const limited = responses.filter((r) => r.status === 429);
  const other = responses.length - accepted - limited.length;
  expected429.add(limited.length, { tenant: tenant.id });
  exactRounds.add(accepted === capacity && limited.length === overshoot && other === 0, {
    tenant: tenant.id,
  });
  check(
    { accepted, limited: limited.length, other },
    {
      'at limit: exactly requestsPerSecond + burst requests accepted': (c) => c.accepted === capacity,
      'past limit: every further request refused with 429': (c) => c.limited === overshoot,
      'burst: no status other than 200 and 429': (c) => c.other === 0,
    },
    { tenant: tenant.id },
  );
  check(
    limited,
    {
      '429: Retry-After, RateLimit-Remaining 0, RateLimit-Limit is the sustained rate': (list) =>
        list.every(
          (r) =>
            Number(header(r, 'Retry-After')) >= 1 &&
            header(r, 'RateLimit-Remaining') === '0' &&
            Number(header(r, 'RateLimit-Limit')) === data.limit.requestsPerSecond &&
            Number(header(r, 'RateLimit-Reset')) >= 1,
        ),
    },
    { tenant: tenant.id },
  );
  sleep(0.5);
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
  retireTenants([...data.hot, data.calm]);
}

export const handleSummary = summaryHandler('ratelimit');

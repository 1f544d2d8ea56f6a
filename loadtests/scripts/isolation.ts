// k6 suite 'isolation': tenant A's credentials are tried against tenant B; every attempt must be refused.
// A breach (any attempt that succeeds) counts in isolation_breaches and stops the run.
// Run: mkdir -p reports && k6 run --env BASE_URL=... loadtests/scripts/isolation.ts (OPERATOR_TOKEN in the env;
// k6 does not create the report directory). npm run load-gate does both for you.
import { check, sleep } from 'k6';
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import http, { type Params, type RefinedResponse, type ResponseType } from 'k6/http';
import { Counter } from 'k6/metrics';
import {
  asTenant,
  baseUrl,
  createTenants,
  jsonField,
  requireEnv,
  retireTenants,
  send,
  type TestTenant,
} from '../lib/api.ts';
import { runIdFrom } from '../lib/ids.ts';
import { summaryHandler } from '../lib/summary.ts';
import { SUITES, suiteOptions } from '../suites.ts';

export const options = suiteOptions('isolation');

const attemptCount = new Counter('isolation_attempts');
const breachCount = new Counter('isolation_breaches');

// A refusal is the right answer to a cross-tenant attempt, so it must not count in http_req_failed.
const refusalIsExpected = http.expectedStatuses(401, 403);
// A failed authentication may also be answered 429 once the address is blocked: still a refusal.
const authFailureIsExpected = http.expectedStatuses(401, 403, 429);
const refusedOrBlocked = (r: RefinedResponse<ResponseType | undefined>) =>
  r.status === 401 || r.status === 403 || r.status === 429;
const AUTH_FAILURE_PROBES = 3;
// Releasing another tenant's task may be refused, or answered 200 {released: false}.
const releaseRefusalIsExpected = http.expectedStatuses(200, 403, 404);

interface IsolationData {
  readonly a: TestTenant;
  readonly b: TestTenant;
  /** A key of A's that setup revoked. */
  readonly revokedKeyOfA: string;
}

export function setup(): IsolationData {
  const [a, b] = createTenants(runIdFrom(__ENV), ['a', 'b'], SUITES.isolation.tier);
  const token = requireEnv('OPERATOR_TOKEN');
  const issued = send(
    'POST',
    `${baseUrl()}/v1/tenants/${a!.id}/api-keys`,
    null,
    asTenant(token, a!.id, 'POST /v1/tenants/:id/api-keys', { tags: { phase: 'setup' } }),
  );
  const extra = { key: String(jsonField(issued, 'key')), prefix: String(jsonField(issued, 'prefix')) };
  // Use the key before revoking it, so a cached verification must be dropped by the revocation.
  const used = http.get(
    `${baseUrl()}/v1/me`,
    asTenant(extra.key, a!.id, 'GET /v1/me', { tags: { phase: 'setup' } }),
  );
  const revoked = send(
    'DELETE',
    `${baseUrl()}/v1/tenants/${a!.id}/api-keys/${extra.prefix}`,
    null,
    asTenant(token, a!.id, 'DELETE /v1/tenants/:id/api-keys/:prefix', { tags: { phase: 'setup' } }),
  );
  check(revoked, {
    'setup: second key of A issued, used and revoked': (r) =>
      issued.status === 201 && used.status === 200 && r.status === 204,
  });
  return { a: a!, b: b!, revokedKeyOfA: extra.key };
}

/** An unsigned token claiming the operator role (alg none); the API must not accept it. */
function forgedOperatorToken(): string {
  const part = (value: object) => encoding.b64encode(JSON.stringify(value), 'rawurl');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ role: 'operator', sub: 'load-gate-forgery' })}.`;
}

function attempt(
  name: string,
  request: (params: Params) => RefinedResponse<ResponseType | undefined>,
  key: string,
  data: IsolationData,
  refused: (r: RefinedResponse<ResponseType | undefined>) => boolean = (r) =>
    r.status === 401 || r.status === 403,
  responseCallback = refusalIsExpected,
): void {
  const res = request(
    asTenant(key, data.a.id, name, { responseCallback, tags: { attack: name, target: data.b.id } }),
  );
  attemptCount.add(1, { attack: name });
  const ok = check(res, { [`refused: ${name}`]: refused }, { attack: name });
  if (!ok) breachCount.add(1, { attack: name, tenant: data.a.id, target: data.b.id });
}

export function attempts(data: IsolationData): void {
  const url = baseUrl();
  const { a, b } = data;

  attempt(
    'GET /v1/tenants/:id with a tenant key',
    (p) => http.get(`${url}/v1/tenants/${b.id}`, p),
    a.key,
    data,
  );
  attempt('GET /v1/tenants with a tenant key', (p) => http.get(`${url}/v1/tenants`, p), a.key, data);
  attempt(
    'POST /v1/tenants with a tenant key',
    (p) => send('POST', `${url}/v1/tenants`, { id: `${a.id}-x`, tier: SUITES.isolation.tier }, p),
    a.key,
    data,
  );
  attempt(
    'POST /v1/tenants/:id/suspend on another tenant',
    (p) => send('POST', `${url}/v1/tenants/${b.id}/suspend`, { reason: 'isolation probe' }, p),
    a.key,
    data,
  );
  attempt(
    'PUT /v1/tenants/:id/tier on another tenant',
    (p) => send('PUT', `${url}/v1/tenants/${b.id}/tier`, { tier: 'enterprise' }, p),
    a.key,
    data,
  );
  attempt(
    'POST /v1/tenants/:id/api-keys on another tenant',
    (p) => send('POST', `${url}/v1/tenants/${b.id}/api-keys`, null, p),
    a.key,
    data,
  );
  attempt(
    "POST /v1/tenants/:id/api-keys/:prefix/rotate of another tenant's key",
    (p) => send('POST', `${url}/v1/tenants/${b.id}/api-keys/${b.prefix}/rotate`, null, p),
    a.key,
    data,
  );
  attempt(
    "DELETE /v1/tenants/:id/api-keys/:prefix of another tenant's key",
    (p) => send('DELETE', `${url}/v1/tenants/${b.id}/api-keys/${b.prefix}`, null, p),
    a.key,
    data,
  );
  // The API blocks an address after repeated failed authentications, so probe those only a few times.
  if (exec.vu.iterationInScenario < AUTH_FAILURE_PROBES) {
    attempt(
      'GET /v1/tenants/:id with a forged operator token',
      (p) => http.get(`${url}/v1/tenants/${b.id}`, p),
      forgedOperatorToken(),
      data,
      refusedOrBlocked,
      authFailureIsExpected,
    );
    attempt(
      'GET /v1/me with a revoked key',
      (p) => http.get(`${url}/v1/me`, p),
      data.revokedKeyOfA,
      data,
      refusedOrBlocked,
      authFailureIsExpected,
    );
  }

  // A header naming B must not switch A's identity.
  const me = http.get(
    `${url}/v1/me`,
    asTenant(a.key, a.id, 'GET /v1/me with X-Tenant-Id of another tenant', {
      headers: { 'X-Tenant-Id': b.id },
      tags: { attack: 'tenant header', target: b.id },
    }),
  );
  attemptCount.add(1, { attack: 'tenant header' });
  if (
    !check(me, {
      'ignored: X-Tenant-Id does not switch tenant': (r) => r.status === 200 && jsonField(r, 'id') === a.id,
    })
  ) {
    breachCount.add(1, { attack: 'tenant header', tenant: a.id, target: b.id });
  }

  // B admits a task; A tries to release it; B's own release must still find it held.
  const taskId = `task-${b.id}-${exec.scenario.iterationInTest}`;
  const admitted = send(
    'POST',
    `${url}/v1/admission`,
    { taskId },
    asTenant(b.key, b.id, 'POST /v1/admission'),
  );
  const allowed = jsonField(admitted, 'decision') === 'allow';
  check(admitted, { 'B: task admitted': (r) => r.status === 200 && allowed });
  if (allowed) {
    attempt(
      "POST /v1/admission/:taskId/release of another tenant's task",
      (p) => send('POST', `${url}/v1/admission/${taskId}/release`, null, p),
      a.key,
      data,
      (r) => r.status === 403 || r.status === 404 || (r.status === 200 && jsonField(r, 'released') === false),
      releaseRefusalIsExpected,
    );
    const own = send(
      'POST',
      `${url}/v1/admission/${taskId}/release`,
      null,
      asTenant(b.key, b.id, 'POST /v1/admission/:taskId/release'),
    );
    const held = check(own, {
      "B: own task still held after A's attempt": (r) =>
        r.status === 200 && jsonField(r, 'released') === true,
    });
    if (!held) breachCount.add(1, { attack: 'release of another tenant task', tenant: a.id, target: b.id });
  }
  sleep(1);
}

export function teardown(data: IsolationData): void {
  // B must come out of the run untouched: still active, its key still working.
  const me = http.get(
    `${baseUrl()}/v1/me`,
    asTenant(data.b.key, data.b.id, 'GET /v1/me', { tags: { phase: 'teardown' } }),
  );
  if (
    !check(me, {
      'teardown: B still active with its own key': (r) =>
        r.status === 200 && jsonField(r, 'status') === 'active',
    })
  ) {
    breachCount.add(1, { attack: 'state of the target after the run', target: data.b.id });
  }
  retireTenants([data.a, data.b]);
}

export const handleSummary = summaryHandler('isolation');

// The tenant traffic mix the smoke, load and peak suites run: read own profile, report usage
// (with an idempotent replay now and then), admit a task and release it.
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { SUITES, type SuiteName } from '../suites.ts';
import { asTenant, baseUrl, createTenants, jsonField, retireTenants, send, type TestTenant } from './api.ts';
import { runIdFrom } from './ids.ts';

export interface TrafficData {
  readonly runId: string;
  readonly tenants: readonly TestTenant[];
}

/** Setup for a traffic suite: the suite's number of fresh tenants of its tier. */
export function setupTraffic(suite: SuiteName): TrafficData {
  const definition = SUITES[suite];
  const runId = runIdFrom(__ENV);
  const roles = Array.from({ length: definition.tenants }, (_, i) => `t${i + 1}`);
  return { runId, tenants: createTenants(runId, roles, definition.tier) };
}

/** One iteration of the mix for the VU's tenant (VUs are spread round-robin over the tenants). */
export function trafficIteration(data: TrafficData): void {
  // Ids across the whole test, so runners of a distributed run never share a VU number or a key.
  const tenant = data.tenants[(exec.vu.idInTest - 1) % data.tenants.length]!;
  const iteration = exec.scenario.iterationInTest;
  const url = baseUrl();

  const me = http.get(`${url}/v1/me`, asTenant(tenant.key, tenant.id, 'GET /v1/me'));
  check(me, { 'me: 200 with own id': (r) => r.status === 200 && jsonField(r, 'id') === tenant.id });

  const idempotencyKey = `${data.runId}-${iteration}`;
  const usageBody = { agentMinutes: 1, apiCalls: 10 };
  const usageParams = asTenant(tenant.key, tenant.id, 'POST /v1/usage', {
    headers: { 'Idempotency-Key': idempotencyKey },
  });
  const usage = send('POST', `${url}/v1/usage`, usageBody, usageParams);
  check(usage, { 'usage: 202 recorded': (r) => r.status === 202 && jsonField(r, 'duplicate') === false });
  if (iteration % 10 === 0) {
    const replay = send('POST', `${url}/v1/usage`, usageBody, usageParams);
    check(replay, {
      'usage: replay with same Idempotency-Key is a duplicate': (r) =>
        r.status === 202 && jsonField(r, 'duplicate') === true,
    });
  }

  const taskId = `task-${idempotencyKey}`;
  const admission = send(
    'POST',
    `${url}/v1/admission`,
    { taskId },
    asTenant(tenant.key, tenant.id, 'POST /v1/admission'),
  );
  const decision = jsonField(admission, 'decision');
  check(admission, {
    'admission: 200 allow or deny': (r) => r.status === 200 && (decision === 'allow' || decision === 'deny'),
  });
  if (decision === 'allow') {
    const release = send(
      'POST',
      `${url}/v1/admission/${taskId}/release`,
      null,
      asTenant(tenant.key, tenant.id, 'POST /v1/admission/:taskId/release'),
    );
    check(release, {
      'release: own admitted task released': (r) => r.status === 200 && jsonField(r, 'released') === true,
    });
  }
  sleep(1);
}

export function teardownTraffic(data: TrafficData): void {
  retireTenants(data.tenants);
}

// Control-plane calls the k6 scripts share. Runs inside k6 only.
import { check, fail } from 'k6';
import http, { type Params, type RefinedResponse, type ResponseType } from 'k6/http';
import { tenantIdFor } from './ids.ts';

/** A tenant the setup created, with the key it may use. */
export interface TestTenant {
  readonly id: string;
  readonly key: string;
  readonly prefix: string;
}

/** Rate limit a tenant reports at GET /v1/me. */
export interface RateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

/** Reads a required environment variable or stops the run with one clear line. */
export function requireEnv(name: string): string {
  const value = __ENV[name];
  if (!value) fail(`${name} is not set: pass it with --env ${name}=... or in the environment`);
  return value;
}

export function baseUrl(): string {
  return requireEnv('BASE_URL').replace(/\/+$/, '');
}

/** Headers and tags for a call made with a bearer credential on behalf of a tenant. */
export function asTenant(key: string, tenant: string, name: string, extra: Params = {}): Params {
  return {
    ...extra,
    headers: { Authorization: `Bearer ${key}`, ...(extra.headers ?? {}) },
    tags: { tenant, name, ...(extra.tags ?? {}) },
  };
}

/**
 * Sends a request with an optional JSON body. Content-Type is set only when there is a body:
 * the API refuses an empty body declared as JSON.
 */
export function send(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body: object | null,
  params: Params,
): RefinedResponse<ResponseType | undefined> {
  if (body === null) return http.request(method, url, null, params);
  const headers = { ...(params.headers ?? {}), 'Content-Type': 'application/json' };
  return http.request(method, url, JSON.stringify(body), { ...params, headers });
}

/** A response header, looked up without regard to case (k6 canonicalises names, e.g. `Ratelimit-Limit`). */
export function header(res: RefinedResponse<ResponseType | undefined>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(res.headers)) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

/** A JSON response body, or one field of it (gjson path); undefined when the body is not JSON. */
export function jsonField(res: RefinedResponse<ResponseType | undefined>, path?: string): unknown {
  try {
    return path === undefined ? res.json() : res.json(path);
  } catch {
    return undefined;
  }
}

function readApiKey(body: unknown): { key: string; prefix: string } | undefined {
  const apiKey = (body as { apiKey?: { key?: unknown; prefix?: unknown } } | null | undefined)?.apiKey;
  if (typeof apiKey?.key !== 'string' || typeof apiKey.prefix !== 'string') return undefined;
  return { key: apiKey.key, prefix: apiKey.prefix };
}

/** Creates tenants with ids unique to this run through the operator API; stops the run on failure. */
export function createTenants(runId: string, roles: readonly string[], tier: string): TestTenant[] {
  const token = requireEnv('OPERATOR_TOKEN');
  return roles.map((role) => {
    const id = tenantIdFor(runId, role);
    const res = send(
      'POST',
      `${baseUrl()}/v1/tenants`,
      { id, tier },
      asTenant(token, id, 'POST /v1/tenants', { tags: { phase: 'setup' } }),
    );
    const issued = res.status === 201 ? readApiKey(jsonField(res)) : undefined;
    if (!issued)
      fail(`setup: POST /v1/tenants for '${id}' answered ${res.status}: ${String(res.body).slice(0, 200)}`);
    return { id, ...issued };
  });
}

/** Reads the tenant's rate limit from GET /v1/me (the API reads the tier catalog), so nothing restates it. */
export function readRateLimit(tenant: TestTenant): RateLimit {
  const res = http.get(
    `${baseUrl()}/v1/me`,
    asTenant(tenant.key, tenant.id, 'GET /v1/me', { tags: { phase: 'setup' } }),
  );
  const requestsPerSecond = jsonField(res, 'limits.requestsPerSecond');
  const burst = jsonField(res, 'limits.burst');
  if (res.status !== 200 || typeof requestsPerSecond !== 'number' || typeof burst !== 'number') {
    fail(
      `setup: GET /v1/me for '${tenant.id}' gave no limits.requestsPerSecond and limits.burst (status ${res.status})`,
    );
  }
  return { requestsPerSecond, burst };
}

/** Suspends the run's tenants so none stays active; KEEP_TENANTS=1 keeps them for debugging. */
export function retireTenants(tenants: readonly TestTenant[]): void {
  if (__ENV.KEEP_TENANTS === '1') return;
  const token = requireEnv('OPERATOR_TOKEN');
  for (const tenant of tenants) {
    const res = send(
      'POST',
      `${baseUrl()}/v1/tenants/${tenant.id}/suspend`,
      { reason: 'load-gate run finished' },
      asTenant(token, tenant.id, 'POST /v1/tenants/:id/suspend', { tags: { phase: 'teardown' } }),
    );
    check(res, { 'teardown: test tenant suspended': (r) => r.status >= 200 && r.status < 300 });
  }
}

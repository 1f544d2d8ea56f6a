import type { FastifyRequest } from 'fastify';
import { tenantIdProblem } from '../tenants/tenant-id.ts';
import type { ControlPlaneConfig } from './config.ts';
import { HttpError } from './errors.ts';

/**
 * What the Host header of a request says about it:
 * - `open`: no PUBLIC_DOMAIN is configured (local and dev runs); any host, the key alone names the tenant;
 * - `tenant`: `{tenant}.app.<domain>`; only that tenant's keys are accepted;
 * - `operator`: `api.<domain>` (or the console's public host); operator routes, and tenant routes for any key;
 * - `unknown`: a host this service does not answer for; `missing`: no Host header at all.
 */
export type RequestHost =
  | { readonly kind: 'open' }
  | { readonly kind: 'tenant'; readonly tenantId: string }
  | { readonly kind: 'operator' }
  | { readonly kind: 'unknown'; readonly host: string }
  | { readonly kind: 'missing' };

/** Which hosts carry which meaning; built once from the config. */
export interface HostRules {
  /** Tenants are `{tenant}.app.<domain>`, operators `api.<domain>`. @default - open: no host rules */
  readonly domain: string | undefined;
  /** Hosts that serve operators, `api.<domain>` first. */
  readonly operatorHosts: readonly string[];
}

/** The host rules of a config: PUBLIC_DOMAIN, plus the host of CONSOLE_PUBLIC_URL as a second operator host. */
export function hostRulesOf(
  config: Pick<ControlPlaneConfig, 'PUBLIC_DOMAIN' | 'CONSOLE_PUBLIC_URL'>,
): HostRules {
  const domain = config.PUBLIC_DOMAIN;
  if (domain === undefined) return { domain: undefined, operatorHosts: [] };
  const hosts = [`api.${domain}`];
  if (config.CONSOLE_PUBLIC_URL !== undefined) hosts.push(new URL(config.CONSOLE_PUBLIC_URL).hostname);
  return { domain, operatorHosts: [...new Set(hosts)] };
}

// A DNS name, optionally with a port; anything else (userinfo, spaces, brackets, non-ASCII) is not a host we serve.
const HOST_PATTERN =
  /^([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)\.?(?::\d{1,5})?$/;

/**
 * Reads a raw Host header value against the rules. The tenant label must be a valid tenant id, so a reserved
 * or malformed label (`www`, `xn--…`, `a.b`) is an unknown host rather than a tenant.
 */
export function resolveHost(raw: string | undefined, rules: HostRules): RequestHost {
  if (rules.domain === undefined) return { kind: 'open' };
  if (raw === undefined || raw.trim() === '') return { kind: 'missing' };
  const host = raw.trim().toLowerCase();
  const match = host.length <= 253 + 6 ? HOST_PATTERN.exec(host) : null;
  if (match === null) return { kind: 'unknown', host: raw.slice(0, 100) };
  const name = match[1]!;
  if (rules.operatorHosts.includes(name)) return { kind: 'operator' };
  const suffix = `.app.${rules.domain}`;
  if (name.endsWith(suffix)) {
    const label = name.slice(0, -suffix.length);
    if (!label.includes('.') && tenantIdProblem(label) === undefined)
      return { kind: 'tenant', tenantId: label };
  }
  return { kind: 'unknown', host: name };
}

/**
 * The request's host meaning. The raw Host header is read, not X-Forwarded-Host: the load balancer keeps the
 * client's Host, and a forwarded header is whatever the client chose to send.
 */
export function requestHost(request: FastifyRequest, rules: HostRules): RequestHost {
  return resolveHost(request.headers.host, rules);
}

/** Who a route serves: tenants (API key or portal session) or operators (JWT or console session). */
export type HostSurface = 'tenant' | 'operator';

/**
 * Why a request may not be served on its host, or null when it may. Missing and unknown hosts are refused for
 * every surface; a tenant's host does not serve operator routes. Whether a key fits a tenant's host is checked
 * where the key is known (`keyFitsHost`).
 */
export function hostRefusal(host: RequestHost, surface: HostSurface, rules: HostRules): HttpError | null {
  const served = `this service answers on {tenant}.app.${rules.domain} and ${rules.operatorHosts.join(', ')}`;
  switch (host.kind) {
    case 'open':
    case 'operator':
      return null;
    case 'missing':
      return new HttpError(400, `missing Host header: ${served}`);
    case 'unknown':
      return new HttpError(421, `unknown host ${JSON.stringify(host.host)}: ${served}`);
    case 'tenant':
      return surface === 'tenant'
        ? null
        : new HttpError(
            421,
            `operator routes are served on ${rules.operatorHosts[0]}, not on a tenant's host`,
          );
  }
}

/** True when a key or session of `tenantId` may be used on this host: anywhere but another tenant's host. */
export function keyFitsHost(host: RequestHost, tenantId: string): boolean {
  return host.kind !== 'tenant' || host.tenantId === tenantId;
}

/** The 403 for a valid key, or session, of another tenant than the host names. */
export function otherTenantRefusal(host: { tenantId: string }): HttpError {
  return new HttpError(403, `this key belongs to another tenant than ${host.tenantId}`);
}

/** The first onRequest hook: records what the host means, and refuses a missing or unknown one (probes excepted). */
export function hostHook(rules: HostRules) {
  return async (request: FastifyRequest): Promise<void> => {
    const host = requestHost(request, rules);
    request.hostTenancy = host;
    if (request.routeOptions.config?.anyHost === true) return;
    if (host.kind === 'missing' || host.kind === 'unknown') throw hostRefusal(host, 'tenant', rules);
  };
}

/** onRequest hook of the operator routes and the console: never on a tenant's host. */
export function operatorHostHook(rules: HostRules) {
  return async (request: FastifyRequest): Promise<void> => {
    const refusal = hostRefusal(request.hostTenancy ?? requestHost(request, rules), 'operator', rules);
    if (refusal !== null) throw refusal;
  };
}

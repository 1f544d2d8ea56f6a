import type { FastifyReply, FastifyRequest } from 'fastify';
import { hashApiKey, parseApiKeyPrefix } from '../tenants/api-keys.ts';
import type { ControlPlaneContext } from './context.ts';
import { HttpError } from './errors.ts';
import { otherTenantRefusal } from './host-tenancy.ts';
import { canWrite } from './operator-auth.ts';

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith('Bearer ')) return null;
  const token = header.slice(7).trim();
  return token === '' ? null : token;
}

/**
 * Counts a failed authentication against the source IP and, for a well-formed API key, its prefix; throws
 * 401, or 429 once either is blocked. Only failures count: a valid credential is checked first and never
 * refused by this limit, so one guesser behind a shared address cannot lock out the others.
 */
async function failAuthentication(
  ctx: ControlPlaneContext,
  request: FastifyRequest,
  message: string,
  credential: string | null,
): Promise<never> {
  const prefix = credential === null ? null : parseApiKeyPrefix(credential);
  const sources = prefix === null ? [`ip:${request.ip}`] : [`ip:${request.ip}`, `prefix:${prefix}`];
  const blocked = Math.max(...(await Promise.all(sources.map((source) => ctx.authFailures.fail(source)))));
  if (blocked > 0) {
    ctx.metrics.rateLimitRejections.inc({ limiter: 'auth-failures' });
    throw new HttpError(429, 'too many failed authentications from this address or for this key', {
      'Retry-After': blocked,
    });
  }
  throw new HttpError(401, message, { 'WWW-Authenticate': 'Bearer' });
}

/**
 * onRequest hook of tenant routes: API key -> tenant (cached), refused on another tenant's host, then the
 * tier's rate limit.
 * A cached key never touches PostgreSQL; only a credential that fails is counted by the failed-auth limit.
 */
export function tenantAuthHook(ctx: ControlPlaneContext) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const key = bearer(request);
    if (key === null) {
      return failAuthentication(ctx, request, 'missing Authorization: Bearer <api key>', null);
    }
    const hash = hashApiKey(key);
    const owner = ctx.keys.peek(hash) ?? (await ctx.keys.verify(hash, key));
    if (owner === null) return failAuthentication(ctx, request, 'invalid or revoked API key', key);
    // Before the rate limit, so requests on the wrong host do not spend the key owner's allowance.
    const host = request.hostTenancy;
    if (host?.kind === 'tenant' && host.tenantId !== owner.tenantId) {
      ctx.metrics.hostTenantRefusals.inc({ surface: 'api' });
      throw otherTenantRefusal(host);
    }
    const tenant = await ctx.tenants.get(owner.tenantId);
    if (tenant === null) return failAuthentication(ctx, request, 'invalid or revoked API key', key);
    const decision = await ctx.limiter.consume(tenant.id, tenant.tier);
    const headers = {
      'RateLimit-Limit': decision.limit,
      'RateLimit-Remaining': decision.remaining,
      'RateLimit-Reset': decision.resetSeconds,
    };
    if (!decision.allowed) {
      ctx.metrics.rateLimitRejections.inc({ limiter: 'tenant' });
      const { requestsPerSecond, burst } = tenant.tier.rateLimit;
      throw new HttpError(
        429,
        `rate limit exceeded: tier '${tenant.tier.name}' allows ${requestsPerSecond} requests/s plus a burst of ${burst}`,
        { ...headers, 'Retry-After': decision.resetSeconds },
      );
    }
    reply.headers(headers);
    request.tenant = tenant;
  };
}

/** onRequest hook of operator routes: a JWT with a role; viewers may only read. API keys are refused. */
export function operatorAuthHook(ctx: ControlPlaneContext) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = bearer(request);
    if (token === null) {
      return failAuthentication(ctx, request, 'missing Authorization: Bearer <operator JWT>', null);
    }
    if (parseApiKeyPrefix(token) !== null) {
      throw new HttpError(403, 'operator routes need an operator JWT; API keys are not accepted');
    }
    const operator = await ctx.verifyOperator(token);
    if (operator === null) {
      return failAuthentication(ctx, request, 'invalid or expired operator token', null);
    }
    const reads = request.method === 'GET' || request.method === 'HEAD';
    if (!reads && !canWrite(operator.role)) {
      throw new HttpError(403, `role '${operator.role}' may only read`);
    }
    request.operator = operator;
  };
}

/** Audit actor of an operator request, e.g. `control-plane:alice`. */
export function actorOf(request: FastifyRequest): string {
  return `control-plane:${request.operator?.subject ?? 'unknown'}`;
}

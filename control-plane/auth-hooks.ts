import type { FastifyReply, FastifyRequest } from 'fastify';
import { hashApiKey, parseApiKeyPrefix } from '../tenants/api-keys.ts';
import type { ControlPlaneContext } from './context.ts';
import { HttpError } from './errors.ts';
import { canWrite } from './operator-auth.ts';

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith('Bearer ')) return null;
  const token = header.slice(7).trim();
  return token === '' ? null : token;
}

async function refuseBlockedIp(ctx: ControlPlaneContext, ip: string): Promise<void> {
  const blocked = await ctx.authFailures.blockedFor(ip);
  if (blocked > 0) {
    ctx.metrics.rateLimitRejections.inc({ limiter: 'auth-failures' });
    throw new HttpError(429, 'too many failed authentications from this address', { 'Retry-After': blocked });
  }
}

/** Counts the failure against the client IP and throws 401, or 429 once the IP is blocked. */
async function failAuthentication(ctx: ControlPlaneContext, ip: string, message: string): Promise<never> {
  const blocked = await ctx.authFailures.fail(ip);
  if (blocked > 0) {
    ctx.metrics.rateLimitRejections.inc({ limiter: 'auth-failures' });
    throw new HttpError(429, 'too many failed authentications from this address', { 'Retry-After': blocked });
  }
  throw new HttpError(401, message, { 'WWW-Authenticate': 'Bearer' });
}

/**
 * onRequest hook of tenant routes: API key -> tenant (cached), then the tier's rate limit.
 * A cached key never touches PostgreSQL; an unknown key is checked against the failed-auth limit first.
 */
export function tenantAuthHook(ctx: ControlPlaneContext) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const key = bearer(request);
    if (key === null) return failAuthentication(ctx, request.ip, 'missing Authorization: Bearer <api key>');
    const hash = hashApiKey(key);
    let owner = ctx.keys.peek(hash);
    if (owner === undefined) {
      await refuseBlockedIp(ctx, request.ip);
      owner = (await ctx.keys.verify(hash, key)) ?? undefined;
      if (owner === undefined) return failAuthentication(ctx, request.ip, 'invalid or revoked API key');
    }
    const tenant = await ctx.tenants.get(owner.tenantId);
    if (tenant === null) return failAuthentication(ctx, request.ip, 'invalid or revoked API key');
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
    if (token === null)
      return failAuthentication(ctx, request.ip, 'missing Authorization: Bearer <operator JWT>');
    if (parseApiKeyPrefix(token) !== null) {
      throw new HttpError(403, 'operator routes need an operator JWT; API keys are not accepted');
    }
    await refuseBlockedIp(ctx, request.ip);
    const operator = await ctx.verifyOperator(token);
    if (operator === null) return failAuthentication(ctx, request.ip, 'invalid or expired operator token');
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

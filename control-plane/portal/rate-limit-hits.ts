import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { hashApiKey } from '../../tenants/api-keys.ts';
import type { ApiKeyCache } from '../tenant-cache.ts';
import { utcDay } from '../tenant-cache.ts';

const KEEP_SECONDS = 40 * 86_400;

/**
 * Per-tenant, per-day count of requests refused by the tier's rate limit, for the portal. Redis when the
 * control plane has it (shared by replicas), memory otherwise.
 */
export class RateLimitHits {
  private readonly memory = new Map<string, Map<string, number>>();

  constructor(
    private readonly redis: Redis | null,
    private readonly keyPrefix: string,
  ) {}

  private key(tenantId: string): string {
    return `${this.keyPrefix}rate-limit-hits:${tenantId}`;
  }

  async count(tenantId: string, day: string): Promise<void> {
    if (this.redis === null) {
      const days = this.memory.get(tenantId) ?? new Map<string, number>();
      days.set(day, (days.get(day) ?? 0) + 1);
      this.memory.set(tenantId, days);
      return;
    }
    await this.redis
      .multi()
      .hincrby(this.key(tenantId), day, 1)
      .expire(this.key(tenantId), KEEP_SECONDS)
      .exec();
  }

  /** Hits per day (YYYY-MM-DD) of the tenant, as stored. */
  async byDay(tenantId: string): Promise<Map<string, number>> {
    if (this.redis === null) return new Map(this.memory.get(tenantId));
    const raw = await this.redis.hgetall(this.key(tenantId));
    return new Map(Object.entries(raw).map(([day, n]) => [day, Number(n)]));
  }
}

/**
 * onResponse hook of the whole server: a 429 that carries RateLimit-Limit came from a tenant's tier
 * limit (the failed-auth block sends none), and its key was verified just before, so it is cached.
 */
export function countRateLimitHits(hits: RateLimitHits, keys: ApiKeyCache) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (reply.statusCode !== 429 || reply.getHeader('ratelimit-limit') === undefined) return;
    const header = request.headers.authorization;
    if (header === undefined || !header.startsWith('Bearer ')) return;
    const owner = keys.peek(hashApiKey(header.slice(7).trim()));
    if (owner === undefined || owner === null) return;
    try {
      await hits.count(owner.tenantId, utcDay());
    } catch (error) {
      request.log.warn({ err: error, tenant: owner.tenantId }, 'rate-limit hit not counted');
    }
  };
}

import type { Redis } from 'ioredis';
import {
  BurstyRateLimiter,
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { TIERS, type Tier } from '../tenants/tiers.ts';

/**
 * The burst allowance refills over this window, so a tenant may exceed its sustained rate by
 * `burst` requests within one second but not keep doing so.
 */
export const BURST_WINDOW_SECONDS = 10;

/** Outcome of one rate-limit check, with the values of the RateLimit-* headers. */
export interface RateDecision {
  readonly allowed: boolean;
  /** The tier's sustained requests per one-second window (the burst comes on top). */
  readonly limit: number;
  /** Sustained requests left in this window; 0 while the burst allowance is being used. */
  readonly remaining: number;
  /** Seconds until the window resets (RateLimit-Reset, and Retry-After on a 429). */
  readonly resetSeconds: number;
}

type Backend = { readonly redis: Redis; readonly keyPrefix: string } | { readonly redis: null };

function limiter(backend: Backend, name: string, points: number, duration: number): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ points, duration, keyPrefix: name });
  if (backend.redis === null) return memory;
  return new RateLimiterRedis({
    storeClient: backend.redis,
    keyPrefix: `${backend.keyPrefix}rl:${name}`,
    points,
    duration,
    // Keeps limiting per process while Redis is unreachable instead of failing requests.
    insuranceLimiter: memory,
  });
}

/** Per-tenant request limits from the tier: requestsPerSecond each second plus a shared burst allowance. */
export class TenantRateLimiter {
  private readonly byTier = new Map<string, BurstyRateLimiter>();

  constructor(backend: Backend) {
    for (const tier of TIERS) {
      this.byTier.set(
        tier.name,
        new BurstyRateLimiter(
          limiter(backend, `${tier.name}:rate`, tier.rateLimit.requestsPerSecond, 1),
          limiter(backend, `${tier.name}:burst`, Math.max(tier.rateLimit.burst, 1), BURST_WINDOW_SECONDS),
        ),
      );
    }
  }

  async consume(tenantId: string, tier: Tier): Promise<RateDecision> {
    const bursty = this.byTier.get(tier.name)!;
    const limit = tier.rateLimit.requestsPerSecond;
    try {
      const res = await bursty.consume(tenantId);
      return {
        allowed: true,
        limit,
        remaining: res.remainingPoints,
        resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
      };
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      return {
        allowed: false,
        limit,
        remaining: 0,
        resetSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)),
      };
    }
  }
}

/** Counts failed authentications per source (client IP, key prefix) and blocks one that fails too often. */
export class AuthFailureLimiter {
  private readonly limiter: RateLimiterAbstract;

  constructor(backend: Backend, failuresPerMinute: number, blockSeconds: number) {
    const options = { points: failuresPerMinute, duration: 60, blockDuration: blockSeconds };
    this.limiter =
      backend.redis === null
        ? new RateLimiterMemory({ ...options, keyPrefix: 'auth-fail' })
        : new RateLimiterRedis({
            ...options,
            storeClient: backend.redis,
            keyPrefix: `${backend.keyPrefix}rl:auth-fail`,
            insuranceLimiter: new RateLimiterMemory({ ...options, keyPrefix: 'auth-fail' }),
          });
  }

  /** Seconds the source remains blocked, or 0 when it may try. */
  async blockedFor(source: string): Promise<number> {
    const res = await this.limiter.get(source);
    if (res === null || res.consumedPoints <= this.limiter.points) return 0;
    return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  }

  /** Records a failure of the source; returns the seconds it is now blocked, or 0. */
  async fail(source: string): Promise<number> {
    try {
      await this.limiter.consume(source);
      return 0;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      return Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
    }
  }
}

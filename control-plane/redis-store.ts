import { type Redis, ReplyError } from 'ioredis';
import { StoreUnavailableError } from './errors.ts';
import type { HotStore, MonthUsage } from './hot-store.ts';

/** A reply error is a bug in a script or a key; anything else means Redis could not be reached. */
function unavailable(error: unknown): never {
  if (error instanceof ReplyError) throw error;
  throw new StoreUnavailableError('redis', error);
}

/** Month counters outlive their month long enough for the last reports to land. */
const USAGE_TTL_SECONDS = 40 * 86_400;

// KEYS: idempotency key (or the usage key when there is none), usage hash.
// ARGV: idempotency TTL seconds (0 = no key), agent minutes, api calls, usage TTL seconds.
const RECORD_USAGE = `
if ARGV[1] ~= '0' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
end
redis.call('HINCRBYFLOAT', KEYS[2], 'agentMinutes', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'apiCalls', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1`;

// KEYS: usage hash. ARGV: agent minutes, api calls, TTL seconds.
const SEED_USAGE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'agentMinutes', ARGV[1], 'apiCalls', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`;

interface ScriptedRedis extends Redis {
  cpRecordUsage(idemKey: string, usageKey: string, ...args: (string | number)[]): Promise<number>;
  cpSeedUsage(usageKey: string, ...args: (string | number)[]): Promise<number>;
}

/** HotStore on Redis: every operation is one round trip. */
export class RedisHotStore implements HotStore {
  readonly kind = 'redis';
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly options: {
      /** Prefix of every key, e.g. `cp:`. */
      readonly keyPrefix: string;
      readonly idempotencyTtlSeconds: number;
    },
  ) {
    redis.defineCommand('cpRecordUsage', { numberOfKeys: 2, lua: RECORD_USAGE });
    redis.defineCommand('cpSeedUsage', { numberOfKeys: 1, lua: SEED_USAGE });
    this.redis = redis as ScriptedRedis;
  }

  async recordUsage(tenantId: string, month: string, idempotencyKey: string | null, usage: MonthUsage) {
    const usageKey = this.usageKey(tenantId, month);
    const idemKey = idempotencyKey === null ? usageKey : this.key('idem', tenantId, idempotencyKey);
    const ttl = idempotencyKey === null ? 0 : this.options.idempotencyTtlSeconds;
    const counted = await this.redis
      .cpRecordUsage(idemKey, usageKey, ttl, usage.agentMinutes, usage.apiCalls, USAGE_TTL_SECONDS)
      .catch(unavailable);
    return counted === 1;
  }

  async seedMonthUsage(tenantId: string, month: string, usage: MonthUsage) {
    await this.redis
      .cpSeedUsage(this.usageKey(tenantId, month), usage.agentMinutes, usage.apiCalls, USAGE_TTL_SECONDS)
      .catch(unavailable);
  }

  async monthUsage(tenantId: string, month: string): Promise<MonthUsage> {
    const [minutes, calls] = await this.redis
      .hmget(this.usageKey(tenantId, month), 'agentMinutes', 'apiCalls')
      .catch(unavailable);
    return { agentMinutes: Number(minutes ?? 0), apiCalls: Number(calls ?? 0) };
  }

  async ping() {
    await this.redis.ping().catch(unavailable);
  }

  private key(...parts: string[]): string {
    return `${this.options.keyPrefix}${parts.join(':')}`;
  }

  private usageKey(tenantId: string, month: string) {
    return this.key('usage', tenantId, month);
  }
}

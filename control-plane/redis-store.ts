import { type Redis, ReplyError } from 'ioredis';
import { StoreUnavailableError } from './errors.ts';
import type { AdmissionLimits, AdmitResult, HotStore, MonthUsage } from './hot-store.ts';

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

// KEYS: slots sorted set (task id -> admitted at, ms), usage hash.
// ARGV: task id, now ms, stale-before ms, concurrent tasks, agent minutes, api calls, slot TTL seconds.
const ADMIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {'allow', tostring(redis.call('ZCARD', KEYS[1]))}
end
local usage = redis.call('HMGET', KEYS[2], 'agentMinutes', 'apiCalls')
local minutes = tonumber(usage[1]) or 0
local calls = tonumber(usage[2]) or 0
if minutes >= tonumber(ARGV[5]) then return {'agent-minutes', tostring(minutes)} end
if calls >= tonumber(ARGV[6]) then return {'api-calls', tostring(calls)} end
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[4]) then return {'concurrency', tostring(active)} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[7])
return {'allow', tostring(active + 1)}`;

interface ScriptedRedis extends Redis {
  cpRecordUsage(idemKey: string, usageKey: string, ...args: (string | number)[]): Promise<number>;
  cpSeedUsage(usageKey: string, ...args: (string | number)[]): Promise<number>;
  cpAdmit(slotsKey: string, usageKey: string, ...args: (string | number)[]): Promise<[string, string]>;
}

/** HotStore on Redis: every operation is one round trip, and the check-and-take of a slot is one Lua script. */
export class RedisHotStore implements HotStore {
  readonly kind = 'redis';
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly options: {
      /** Prefix of every key, e.g. `cp:`. */
      readonly keyPrefix: string;
      readonly idempotencyTtlSeconds: number;
      readonly slotTtlSeconds: number;
    },
  ) {
    redis.defineCommand('cpRecordUsage', { numberOfKeys: 2, lua: RECORD_USAGE });
    redis.defineCommand('cpSeedUsage', { numberOfKeys: 1, lua: SEED_USAGE });
    redis.defineCommand('cpAdmit', { numberOfKeys: 2, lua: ADMIT });
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

  async admit(
    tenantId: string,
    month: string,
    taskId: string,
    limits: AdmissionLimits,
  ): Promise<AdmitResult> {
    const now = Date.now();
    const [outcome, value] = await this.redis
      .cpAdmit(
        this.slotsKey(tenantId),
        this.usageKey(tenantId, month),
        taskId,
        now,
        now - this.options.slotTtlSeconds * 1000,
        limits.concurrentTasks,
        limits.agentMinutesPerMonth,
        limits.apiCallsPerMonth,
        this.options.slotTtlSeconds,
      )
      .catch(unavailable);
    if (outcome === 'allow') return { allowed: true, activeTasks: Number(value) };
    return {
      allowed: false,
      reason: outcome as 'agent-minutes' | 'api-calls' | 'concurrency',
      value: Number(value),
    };
  }

  async release(tenantId: string, taskId: string) {
    return (await this.redis.zrem(this.slotsKey(tenantId), taskId).catch(unavailable)) === 1;
  }

  async activeTasks(tenantId: string) {
    const staleBefore = Date.now() - this.options.slotTtlSeconds * 1000;
    return this.redis.zcount(this.slotsKey(tenantId), `(${staleBefore}`, '+inf').catch(unavailable);
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

  private slotsKey(tenantId: string) {
    return this.key('slots', tenantId);
  }
}

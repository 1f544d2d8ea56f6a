import type { Redis } from 'ioredis';

/** What a grant is checked against: the tier's limits and the tenant's reported usage this month. */
export interface LeaseLimits {
  readonly concurrentTasks: number;
  readonly agentMinutesPerMonth: number;
  readonly apiCallsPerMonth: number;
  /** Reported usage this month (the usage counters), or the catalog's billed figure when that is larger. */
  readonly reportedAgentMinutes: number;
  readonly reportedApiCalls: number;
}

export interface Lease {
  readonly taskId: string;
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly expiresAt: number;
}

/** A live lease as the portal and the console show it. */
export interface LiveLease {
  readonly taskId: string;
  /** ms since the epoch. */
  readonly startedAt: number;
  /** The grant or the latest heartbeat, whichever came last. */
  readonly lastBeatAt: number;
  readonly expiresAt: number;
}

/** Live leases listed at most; a tier's concurrency limit is far below it. */
export const LIVE_LEASES_SHOWN = 200;

export type GrantResult =
  | { readonly granted: true; readonly lease: Lease }
  | {
      readonly granted: false;
      readonly reason: 'agent-minutes' | 'api-calls' | 'concurrency';
      /** The figure that hit the limit: counted agent-minutes, API calls or active leases. */
      readonly value: number;
    };

/** A lease that ended (released, stopped or expired): it ran from `startedAt` to `endedAt` (ms). */
export interface EndedLease {
  readonly taskId: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

/**
 * Where leased time goes to become durable (the catalog, through control-plane/lease-meter.ts). A store
 * keeps every ended lease until `acknowledge` is called, and hands it over again on each later call for
 * the tenant, so an ended lease is persisted even when the process dies before writing it.
 */
export interface LeaseMeterSink {
  /** A live lease has run at least until `at` (ms). */
  ran(tenantId: string, taskId: string, startedAt: number, at: number): void;
  /** Ended leases not yet acknowledged; `acknowledge` forgets them once they are persisted. */
  ended(tenantId: string, leases: readonly EndedLease[], acknowledge: () => Promise<void>): void;
}

export type HeartbeatResult =
  | { readonly live: true; readonly lease: Lease; readonly leasedMinutes: number }
  | { readonly live: false; readonly leasedMinutes: number };

/**
 * Task leases: a slot that lives only while its runner heartbeats, and the agent-minutes the
 * leases ran, counted here rather than taken from what the tenant reports. An expired lease frees
 * its slot; its minutes count up to its expiry.
 */
export interface LeaseStore {
  /** Atomically checks quota (the larger of leased and reported minutes) and concurrency, and grants. */
  grant(tenantId: string, month: string, taskId: string, limits: LeaseLimits): Promise<GrantResult>;
  /** Counts the minutes since the last beat and extends the lease; `live: false` when it is gone. */
  heartbeat(tenantId: string, month: string, taskId: string): Promise<HeartbeatResult>;
  /** Counts the lease's last minutes and frees its slot; false when there was no live lease. */
  end(tenantId: string, month: string, taskId: string): Promise<boolean>;
  /** Agent-minutes the tenant's leases ran this month, live leases counted to their last beat. */
  leasedMinutes(tenantId: string, month: string): Promise<number>;
  activeLeases(tenantId: string): Promise<number>;
  /** The tenant's unexpired leases, oldest first, at most LIVE_LEASES_SHOWN. Reads only: nothing is swept. */
  liveLeases(tenantId: string): Promise<LiveLease[]>;
  /**
   * Sweeps the expired leases of every tenant that holds leases or unacknowledged ended ones, so a tenant
   * that makes no further call still has its last lease handed to the meter. Returns the tenants swept.
   */
  sweepAll(month: string): Promise<number>;
}

export interface LeaseStoreOptions {
  /** A lease lives this long after its grant or last heartbeat. */
  readonly ttlMs: number;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Receives leased time to persist. @default - none: leased time lives in the store only */
  readonly meter?: LeaseMeterSink;
}

const NO_METER: LeaseMeterSink = { ran() {}, ended() {} };

/**
 * An ended lease its own process has not written after this long is handed to whichever replica calls
 * next for the tenant (or sweeps): its process most likely died. Well above the meter's flush interval.
 */
export const ENDED_HANDOVER_MS = 30_000;
/** Most stale ended leases one call hands over, so no call's reply grows with a backlog. */
const ENDED_HANDOVER_BATCH = 50;

/** Leased-minute counters outlive their month long enough for the usage endpoints and the report. */
const COUNTER_TTL_SECONDS = 40 * 86_400;

// Every script first sweeps the tenant's expired leases, counting each up to its expiry. The lease
// keys live as long as the counter, so a lease nobody heartbeats is still swept and counted.
// KEYS: expiry sorted set (task -> expiresAt ms), lease hash (task -> "startedAt:countedAt"),
// leased-minutes counter of the month, ended set ("task|startedAt" scored by endedAt ms, until the meter
// has persisted it). Every script's first reply element is the leases it ended itself plus, at most
// ENDED_HANDOVER_BATCH of them, ended leases older than ENDED_HANDOVER_MS: those whose process died before
// writing them.
const SWEEP = `
local handed = {}
local function finish(task, started, at)
  local member = task .. '|' .. started
  redis.call('ZADD', KEYS[4], at, member)
  redis.call('EXPIRE', KEYS[4], ARGV[#ARGV])
  handed[#handed + 1] = member
  handed[#handed + 1] = tostring(at)
end
local function handover(now)
  local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - ${ENDED_HANDOVER_MS}, 'WITHSCORES', 'LIMIT', 0, ${ENDED_HANDOVER_BATCH})
  for i = 1, #stale do handed[#handed + 1] = stale[i] end
  return handed
end
local function sweep(now)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES')
  local minutes = 0
  for i = 1, #expired, 2 do
    local data = redis.call('HGET', KEYS[2], expired[i])
    if data then
      local started, counted = string.match(data, '^(%d+):(%d+)$')
      minutes = minutes + math.max(0, tonumber(expired[i + 1]) - tonumber(counted)) / 60000
      redis.call('HDEL', KEYS[2], expired[i])
      finish(expired[i], started, expired[i + 1])
    end
    redis.call('ZREM', KEYS[1], expired[i])
  end
  if minutes > 0 then
    redis.call('INCRBYFLOAT', KEYS[3], minutes)
    redis.call('EXPIRE', KEYS[3], ARGV[#ARGV])
  end
end
local function count(task, now)
  local data = redis.call('HGET', KEYS[2], task)
  if not data then return nil end
  local started, counted = string.match(data, '^(%d+):(%d+)$')
  local minutes = math.max(0, now - tonumber(counted)) / 60000
  if minutes > 0 then
    redis.call('INCRBYFLOAT', KEYS[3], minutes)
    redis.call('EXPIRE', KEYS[3], ARGV[#ARGV])
  end
  return started
end
`;

// ARGV: task, now, ttl ms, concurrent tasks, minutes quota, reported minutes, api quota, reported calls, counter TTL.
const GRANT = `${SWEEP}
local now = tonumber(ARGV[2])
sweep(now)
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
  return {handover(now), 'granted', string.match(existing, '^(%d+):'), expires}
end
local ended = handover(now)
local leased = tonumber(redis.call('GET', KEYS[3]) or '0')
local minutes = math.max(leased, tonumber(ARGV[6]))
if minutes >= tonumber(ARGV[5]) then return {ended, 'agent-minutes', tostring(minutes)} end
if tonumber(ARGV[8]) >= tonumber(ARGV[7]) then return {ended, 'api-calls', ARGV[8]} end
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[4]) then return {ended, 'concurrency', tostring(active)} end
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
redis.call('EXPIRE', KEYS[2], ARGV[#ARGV])
return {ended, 'granted', ARGV[2], tostring(expires)}`;

// ARGV: task, now, ttl ms, counter TTL.
const HEARTBEAT = `${SWEEP}
local now = tonumber(ARGV[2])
sweep(now)
local started = count(ARGV[1], now)
local leased = redis.call('GET', KEYS[3]) or '0'
if not started then return {handover(now), 'gone', leased} end
local expires = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], started .. ':' .. ARGV[2])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
redis.call('EXPIRE', KEYS[2], ARGV[#ARGV])
return {handover(now), 'live', started, tostring(expires), redis.call('GET', KEYS[3]) or '0'}`;

// ARGV: task, now, counter TTL.
const END = `${SWEEP}
local now = tonumber(ARGV[2])
sweep(now)
local started = count(ARGV[1], now)
if not started then return {handover(now), 0} end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
finish(ARGV[1], started, ARGV[2])
return {handover(now), 1}`;

// ARGV: now, counter TTL. Returns the counter plus the live leases' minutes since their last beat.
const LEASED = `${SWEEP}
local now = tonumber(ARGV[1])
sweep(now)
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
for _, data in ipairs(redis.call('HVALS', KEYS[2])) do
  total = total + math.max(0, now - tonumber(string.match(data, ':(%d+)$'))) / 60000
end
return {handover(now), tostring(total)}`;

/** Every script answers the ended leases to hand over (flat member/endedAt list) first, then its own reply. */
type Reply<T extends unknown[]> = [string[], ...T];

const oldestFirst = (a: LiveLease, b: LiveLease) =>
  a.startedAt - b.startedAt || (a.taskId < b.taskId ? -1 : 1);

interface ScriptedRedis extends Redis {
  cpLeaseGrant(...args: (string | number)[]): Promise<Reply<string[]>>;
  cpLeaseHeartbeat(...args: (string | number)[]): Promise<Reply<string[]>>;
  cpLeaseEnd(...args: (string | number)[]): Promise<Reply<[number]>>;
  cpLeased(...args: (string | number)[]): Promise<Reply<[string]>>;
}

const endedField = (lease: { taskId: string; startedAt: number }) => `${lease.taskId}|${lease.startedAt}`;

function parseEnded(flat: readonly string[]): EndedLease[] {
  const leases: EndedLease[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i]!;
    const bar = field.lastIndexOf('|');
    leases.push({
      taskId: field.slice(0, bar),
      startedAt: Number(field.slice(bar + 1)),
      endedAt: Number(flat[i + 1]),
    });
  }
  return leases;
}

/** Leases in Redis, so every control-plane replica sees the same slots and minutes; one script per call. */
export class RedisLeaseStore implements LeaseStore {
  private readonly redis: ScriptedRedis;
  private readonly clock: () => number;
  private readonly meter: LeaseMeterSink;

  constructor(
    redis: Redis,
    private readonly options: LeaseStoreOptions & { readonly keyPrefix: string },
  ) {
    redis.defineCommand('cpLeaseGrant', { numberOfKeys: 4, lua: GRANT });
    redis.defineCommand('cpLeaseHeartbeat', { numberOfKeys: 4, lua: HEARTBEAT });
    redis.defineCommand('cpLeaseEnd', { numberOfKeys: 4, lua: END });
    redis.defineCommand('cpLeased', { numberOfKeys: 4, lua: LEASED });
    this.redis = redis as ScriptedRedis;
    this.clock = options.clock ?? Date.now;
    this.meter = options.meter ?? NO_METER;
  }

  async grant(tenantId: string, month: string, taskId: string, limits: LeaseLimits): Promise<GrantResult> {
    const [ended, outcome, a, b] = await this.redis.cpLeaseGrant(
      ...this.keys(tenantId, month),
      taskId,
      Math.floor(this.clock()),
      this.options.ttlMs,
      limits.concurrentTasks,
      limits.agentMinutesPerMonth,
      limits.reportedAgentMinutes,
      limits.apiCallsPerMonth,
      limits.reportedApiCalls,
      COUNTER_TTL_SECONDS,
    );
    this.handOver(tenantId, ended);
    if (outcome === 'granted') {
      return { granted: true, lease: { taskId, startedAt: Number(a), expiresAt: Number(b) } };
    }
    return {
      granted: false,
      reason: outcome as 'agent-minutes' | 'api-calls' | 'concurrency',
      value: Number(a),
    };
  }

  async heartbeat(tenantId: string, month: string, taskId: string): Promise<HeartbeatResult> {
    const now = Math.floor(this.clock());
    const [ended, ...reply] = await this.redis.cpLeaseHeartbeat(
      ...this.keys(tenantId, month),
      taskId,
      now,
      this.options.ttlMs,
      COUNTER_TTL_SECONDS,
    );
    this.handOver(tenantId, ended);
    if (reply[0] === 'gone') return { live: false, leasedMinutes: Number(reply[1]) };
    const startedAt = Number(reply[1]);
    this.meter.ran(tenantId, taskId, startedAt, now);
    return {
      live: true,
      lease: { taskId, startedAt, expiresAt: Number(reply[2]) },
      leasedMinutes: Number(reply[3]),
    };
  }

  async end(tenantId: string, month: string, taskId: string): Promise<boolean> {
    const [ended, outcome] = await this.redis.cpLeaseEnd(
      ...this.keys(tenantId, month),
      taskId,
      Math.floor(this.clock()),
      COUNTER_TTL_SECONDS,
    );
    this.handOver(tenantId, ended);
    return outcome === 1;
  }

  async leasedMinutes(tenantId: string, month: string): Promise<number> {
    const [ended, total] = await this.redis.cpLeased(
      ...this.keys(tenantId, month),
      Math.floor(this.clock()),
      COUNTER_TTL_SECONDS,
    );
    this.handOver(tenantId, ended);
    return Number(total);
  }

  async activeLeases(tenantId: string): Promise<number> {
    const [expiry] = this.keys(tenantId, '');
    return this.redis.zcount(expiry, `(${Math.floor(this.clock())}`, '+inf');
  }

  async liveLeases(tenantId: string): Promise<LiveLease[]> {
    const [expiry, tasks] = this.keys(tenantId, '');
    const live = await this.redis.zrangebyscore(
      expiry,
      `(${Math.floor(this.clock())}`,
      '+inf',
      'WITHSCORES',
      'LIMIT',
      0,
      LIVE_LEASES_SHOWN,
    );
    if (live.length === 0) return [];
    const ids = live.filter((_, i) => i % 2 === 0);
    const data = await this.redis.hmget(tasks, ...ids);
    const leases: LiveLease[] = [];
    ids.forEach((taskId, i) => {
      // Ended between the two reads: no longer live.
      const match = /^(\d+):(\d+)$/.exec(data[i] ?? '');
      if (match === null) return;
      leases.push({
        taskId,
        startedAt: Number(match[1]),
        lastBeatAt: Number(match[2]),
        expiresAt: Number(live[i * 2 + 1]),
      });
    });
    return leases.sort(oldestFirst);
  }

  async sweepAll(month: string): Promise<number> {
    const tenants = new Set<string>();
    const base = `${this.options.keyPrefix}lease:{`;
    for (const suffix of ['expiry', 'ended']) {
      for await (const keys of this.redis.scanStream({ match: `${base}*}:${suffix}`, count: 500 })) {
        for (const key of keys as string[]) tenants.add(key.slice(base.length, key.lastIndexOf('}')));
      }
    }
    for (const tenantId of tenants) await this.leasedMinutes(tenantId, month);
    return tenants.size;
  }

  private handOver(tenantId: string, flat: readonly string[]): void {
    if (flat.length === 0) return;
    const leases = parseEnded(flat);
    const [, , , endedKey] = this.keys(tenantId, '');
    this.meter.ended(tenantId, leases, async () => {
      await this.redis.zrem(endedKey, ...leases.map(endedField));
    });
  }

  /** The tenant id in braces keeps a tenant's keys in one Redis Cluster slot, as the scripts need. */
  private keys(tenantId: string, month: string): [string, string, string, string] {
    const p = `${this.options.keyPrefix}lease:{${tenantId}}`;
    return [`${p}:expiry`, `${p}:tasks`, `${p}:minutes:${month}`, `${p}:ended`];
  }
}

interface MemoryLease {
  startedAt: number;
  countedAt: number;
  expiresAt: number;
}

/** The same rules in one process, for a control plane started without REDIS_URL. */
export class MemoryLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, Map<string, MemoryLease>>();
  private readonly minutes = new Map<string, number>();
  /** Per tenant, ended leases the meter has not acknowledged, by "task|startedAt". */
  private readonly ended = new Map<string, Map<string, EndedLease>>();
  private readonly endedNow: EndedLease[] = [];
  private readonly clock: () => number;
  private readonly meter: LeaseMeterSink;

  constructor(private readonly options: LeaseStoreOptions) {
    this.clock = options.clock ?? Date.now;
    this.meter = options.meter ?? NO_METER;
  }

  async grant(tenantId: string, month: string, taskId: string, limits: LeaseLimits): Promise<GrantResult> {
    const now = this.clock();
    const tasks = this.swept(tenantId, month, now);
    this.handOver(tenantId);
    const existing = tasks.get(taskId);
    if (existing) {
      return {
        granted: true,
        lease: { taskId, startedAt: existing.startedAt, expiresAt: existing.expiresAt },
      };
    }
    const minutes = Math.max(this.counted(tenantId, month), limits.reportedAgentMinutes);
    if (minutes >= limits.agentMinutesPerMonth) {
      return { granted: false, reason: 'agent-minutes', value: minutes };
    }
    if (limits.reportedApiCalls >= limits.apiCallsPerMonth) {
      return { granted: false, reason: 'api-calls', value: limits.reportedApiCalls };
    }
    if (tasks.size >= limits.concurrentTasks) {
      return { granted: false, reason: 'concurrency', value: tasks.size };
    }
    const lease = { startedAt: now, countedAt: now, expiresAt: now + this.options.ttlMs };
    tasks.set(taskId, lease);
    return { granted: true, lease: { taskId, startedAt: now, expiresAt: lease.expiresAt } };
  }

  async heartbeat(tenantId: string, month: string, taskId: string): Promise<HeartbeatResult> {
    const now = this.clock();
    const lease = this.swept(tenantId, month, now).get(taskId);
    this.handOver(tenantId);
    if (!lease) return { live: false, leasedMinutes: this.counted(tenantId, month) };
    this.add(tenantId, month, (now - lease.countedAt) / 60_000);
    lease.countedAt = now;
    lease.expiresAt = now + this.options.ttlMs;
    this.meter.ran(tenantId, taskId, lease.startedAt, now);
    return {
      live: true,
      lease: { taskId, startedAt: lease.startedAt, expiresAt: lease.expiresAt },
      leasedMinutes: this.counted(tenantId, month),
    };
  }

  async end(tenantId: string, month: string, taskId: string): Promise<boolean> {
    const now = this.clock();
    const tasks = this.swept(tenantId, month, now);
    const lease = tasks.get(taskId);
    if (lease) {
      this.add(tenantId, month, (now - lease.countedAt) / 60_000);
      tasks.delete(taskId);
      this.finish(tenantId, { taskId, startedAt: lease.startedAt, endedAt: now });
    }
    this.handOver(tenantId);
    return lease !== undefined;
  }

  async leasedMinutes(tenantId: string, month: string): Promise<number> {
    const now = this.clock();
    let total = this.counted(tenantId, month);
    for (const lease of this.swept(tenantId, month, now).values()) total += (now - lease.countedAt) / 60_000;
    this.handOver(tenantId);
    return total;
  }

  async activeLeases(tenantId: string): Promise<number> {
    const now = this.clock();
    return [...(this.leases.get(tenantId)?.values() ?? [])].filter((l) => l.expiresAt > now).length;
  }

  async liveLeases(tenantId: string): Promise<LiveLease[]> {
    const now = this.clock();
    return [...(this.leases.get(tenantId)?.entries() ?? [])]
      .filter(([, l]) => l.expiresAt > now)
      .map(([taskId, l]) => ({
        taskId,
        startedAt: l.startedAt,
        lastBeatAt: l.countedAt,
        expiresAt: l.expiresAt,
      }))
      .sort(oldestFirst)
      .slice(0, LIVE_LEASES_SHOWN);
  }

  async sweepAll(month: string): Promise<number> {
    const tenants = new Set([...this.leases.keys(), ...this.ended.keys()]);
    for (const tenantId of tenants) await this.leasedMinutes(tenantId, month);
    return tenants.size;
  }

  private counted(tenantId: string, month: string): number {
    return this.minutes.get(`${tenantId}\u0000${month}`) ?? 0;
  }

  private add(tenantId: string, month: string, minutes: number): void {
    const key = `${tenantId}\u0000${month}`;
    this.minutes.set(key, (this.minutes.get(key) ?? 0) + Math.max(0, minutes));
  }

  private finish(tenantId: string, lease: EndedLease): void {
    let pending = this.ended.get(tenantId);
    if (!pending) {
      pending = new Map();
      this.ended.set(tenantId, pending);
    }
    pending.set(endedField(lease), lease);
    this.endedNow.push(lease);
  }

  /** This call's ended leases plus stale ones, as the Redis scripts hand them over. */
  private handOver(tenantId: string): void {
    // The methods run without awaiting, so what finish() collected belongs to this call.
    const own = this.endedNow.splice(0);
    const pending = this.ended.get(tenantId);
    if (!pending || pending.size === 0) return;
    const staleBefore = this.clock() - ENDED_HANDOVER_MS;
    const stale = [...pending.values()]
      .filter((l) => l.endedAt <= staleBefore)
      .slice(0, ENDED_HANDOVER_BATCH);
    const leases = [...own, ...stale.filter((l) => !own.includes(l))];
    if (leases.length === 0) return;
    this.meter.ended(tenantId, leases, async () => {
      for (const lease of leases) pending.delete(endedField(lease));
      if (pending.size === 0 && this.ended.get(tenantId) === pending) this.ended.delete(tenantId);
    });
  }

  private swept(tenantId: string, month: string, now: number): Map<string, MemoryLease> {
    let tasks = this.leases.get(tenantId);
    if (!tasks) {
      tasks = new Map();
      this.leases.set(tenantId, tasks);
    }
    for (const [taskId, lease] of tasks) {
      if (lease.expiresAt > now) continue;
      this.add(tenantId, month, (lease.expiresAt - lease.countedAt) / 60_000);
      tasks.delete(taskId);
      this.finish(tenantId, { taskId, startedAt: lease.startedAt, endedAt: lease.expiresAt });
    }
    return tasks;
  }
}

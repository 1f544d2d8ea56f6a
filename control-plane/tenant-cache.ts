import type pg from 'pg';
import { verifyApiKey } from '../tenants/api-keys.ts';
import { billableUsageByTenant, monthWindow } from '../tenants/metering/billable-usage.ts';
import { getTier, type Tier } from '../tenants/tiers.ts';
import { isCatalogUnreachable, StoreUnavailableError } from './errors.ts';
import type { HotStore } from './hot-store.ts';

/** What the hot path needs to know about a tenant. */
export interface TenantState {
  readonly id: string;
  readonly tier: Tier;
  readonly status: string;
  /**
   * The month's billable agent-minutes in the catalog when this entry was loaded (tenants/metering: per
   * hour, the larger of reported and leased). The quota counts it too, so it holds the tenant to the
   * figure it is billed on; the live Redis counters cover what the catalog has not caught up with.
   */
  readonly billedAgentMinutes: number;
}

const DAY_MS = 86_400_000;
let today = { start: 0, end: 0, day: '' };

/** Today's date in UTC, YYYY-MM-DD; formatted once per day, since every request on the hot path needs it. */
export function utcDay(now: number = Date.now()): string {
  if (now < today.start || now >= today.end) {
    const start = now - (now % DAY_MS);
    today = { start, end: start + DAY_MS, day: new Date(start).toISOString().slice(0, 10) };
  }
  return today.day;
}

/** The billing month, YYYY-MM in UTC. */
export function billingMonth(now: number = Date.now()): string {
  return utcDay(now).slice(0, 7);
}

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: number;
}

/**
 * A small TTL cache whose loads are shared: concurrent misses for one key make one load.
 * TTL 0 disables caching but keeps the sharing. While the catalog is unreachable, an expired value is
 * served for up to `graceMs` past its TTL; values deleted (revoked, changed) are never served again.
 */
class TtlCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly loading = new Map<string, Promise<T>>();
  /** Bumped by every delete: a load that began before one may have read the old row, so it is not cached. */
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly graceMs: number,
  ) {}

  /** The cached value without loading; undefined when absent or expired. */
  peek(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > Date.now()) return entry.value;
    return undefined;
  }

  get(key: string, load: () => Promise<T>, cacheIf: (value: T) => boolean = () => true): Promise<T> {
    const hit = this.peek(key);
    if (hit !== undefined) return Promise.resolve(hit);
    const inFlight = this.loading.get(key);
    if (inFlight) return inFlight;
    const generation = this.generation;
    const promise: Promise<T> = load()
      .then(
        (value) => {
          if (this.ttlMs > 0 && cacheIf(value) && generation === this.generation)
            this.entries.set(key, { value, expiresAt: Date.now() + this.ttlMs });
          else this.entries.delete(key);
          return value;
        },
        (error: unknown) => {
          if (!isCatalogUnreachable(error)) throw error;
          const stale = this.entries.get(key);
          if (stale !== undefined && stale.expiresAt + this.graceMs > Date.now()) return stale.value;
          this.entries.delete(key);
          throw new StoreUnavailableError('postgres', error);
        },
      )
      .finally(() => {
        if (this.loading.get(key) === promise) this.loading.delete(key);
      });
    this.loading.set(key, promise);
    return promise;
  }

  delete(key: string): void {
    this.entries.delete(key);
    this.forgetLoads();
  }

  deleteWhere(match: (value: T) => boolean): void {
    for (const [key, entry] of this.entries) if (match(entry.value)) this.entries.delete(key);
    this.forgetLoads();
  }

  clear(): void {
    this.entries.clear();
    this.forgetLoads();
  }

  /** Later callers load afresh instead of joining a load that may predate the change. */
  private forgetLoads(): void {
    this.generation++;
    this.loading.clear();
  }
}

/** Verified API keys by key hash, so a valid key costs PostgreSQL one query per TTL. */
export class ApiKeyCache {
  private readonly cache: TtlCache<{ tenantId: string; prefix: string } | null>;

  constructor(
    private readonly pool: pg.Pool,
    ttlMs: number,
    graceMs: number,
  ) {
    this.cache = new TtlCache(ttlMs, graceMs);
  }

  /** Cached tenant of a key hash; undefined on a miss (call verify). */
  peek(keyHash: string) {
    return this.cache.peek(keyHash) ?? undefined;
  }

  /** Checks the key against the catalog and caches it when valid (failures are never cached). */
  verify(keyHash: string, key: string) {
    return this.cache.get(
      keyHash,
      () => verifyApiKey(this.pool, key),
      (v) => v !== null,
    );
  }

  /** Forgets a revoked or rotated key at once in this process. */
  invalidatePrefix(prefix: string): void {
    this.cache.deleteWhere((v) => v?.prefix === prefix);
  }

  /** Forgets every key (after missing invalidations, e.g. a lost Redis subscription). */
  clear(): void {
    this.cache.clear();
  }
}

/** Tenant tier and status, plus seeding of the month's usage counters in the hot store. */
export class TenantStateCache {
  private readonly cache: TtlCache<TenantState | null>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: HotStore,
    ttlMs: number,
    graceMs: number,
  ) {
    this.cache = new TtlCache(ttlMs, graceMs);
  }

  get(tenantId: string): Promise<TenantState | null> {
    return this.cache.get(tenantId, () => this.load(tenantId));
  }

  invalidate(tenantId: string): void {
    this.cache.delete(tenantId);
  }

  clear(): void {
    this.cache.clear();
  }

  private async load(tenantId: string): Promise<TenantState | null> {
    const month = billingMonth();
    const { rows } = await this.pool.query<{
      id: string;
      tier: string;
      status: string;
      agent_minutes: number;
      api_calls: number;
    }>(
      `SELECT t.id, t.tier, t.status::text AS status,
              coalesce(sum(u.agent_minutes), 0)::float8 AS agent_minutes,
              coalesce(sum(u.api_calls), 0)::float8 AS api_calls
         FROM control.tenants t
         LEFT JOIN control.usage u ON u.tenant_id = t.id AND to_char(u.day, 'YYYY-MM') = $2
        WHERE t.id = $1
        GROUP BY t.id`,
      [tenantId, month],
    );
    const row = rows[0];
    if (!row) return null;
    const billed = await billableUsageByTenant(this.pool, { ...monthWindow(month), tenantIds: [tenantId] });
    await this.store.seedMonthUsage(tenantId, month, {
      agentMinutes: row.agent_minutes,
      apiCalls: row.api_calls,
    });
    return {
      id: row.id,
      tier: getTier(row.tier),
      status: row.status,
      billedAgentMinutes: billed.get(tenantId)?.agentMinutes ?? 0,
    };
  }
}

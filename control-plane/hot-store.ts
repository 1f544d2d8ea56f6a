/** A tenant's metered usage in one billing month. */
export interface MonthUsage {
  readonly agentMinutes: number;
  readonly apiCalls: number;
}

/**
 * Shared hot state kept out of PostgreSQL: idempotency keys and this month's usage counters (task
 * leases are in lease-store.ts). Redis in production; memory when one process runs alone.
 */
export interface HotStore {
  /** 'redis' or 'memory', for the start-up log and /readyz. */
  readonly kind: 'redis' | 'memory';
  /**
   * Counts a usage report into the month's counters unless its idempotency key was seen before.
   * Returns false for a duplicate.
   */
  recordUsage(
    tenantId: string,
    month: string,
    idempotencyKey: string | null,
    usage: MonthUsage,
  ): Promise<boolean>;
  /** Sets the month's counters from the catalog when the store holds none (after a cache restart). */
  seedMonthUsage(tenantId: string, month: string, usage: MonthUsage): Promise<void>;
  monthUsage(tenantId: string, month: string): Promise<MonthUsage>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
}

interface MemoryCounter {
  agentMinutes: number;
  apiCalls: number;
}

/** In-process HotStore for a single instance (the embedded default without REDIS_URL). */
export class MemoryHotStore implements HotStore {
  readonly kind = 'memory';
  private readonly idempotency = new Map<string, number>();
  private readonly usage = new Map<string, MemoryCounter>();
  private recorded = 0;

  constructor(private readonly options: { readonly idempotencyTtlSeconds: number }) {}

  async recordUsage(tenantId: string, month: string, idempotencyKey: string | null, usage: MonthUsage) {
    const now = Date.now();
    if (++this.recorded % 10_000 === 0) this.forgetExpiredKeys(now);
    if (idempotencyKey !== null) {
      const key = `${tenantId}\u0000${idempotencyKey}`;
      const expiresAt = this.idempotency.get(key);
      if (expiresAt !== undefined && expiresAt > now) return false;
      this.idempotency.set(key, now + this.options.idempotencyTtlSeconds * 1000);
    }
    const counter = this.counter(tenantId, month);
    counter.agentMinutes += usage.agentMinutes;
    counter.apiCalls += usage.apiCalls;
    return true;
  }

  async seedMonthUsage(tenantId: string, month: string, usage: MonthUsage) {
    const key = `${tenantId}\u0000${month}`;
    if (!this.usage.has(key)) this.usage.set(key, { ...usage });
  }

  async monthUsage(tenantId: string, month: string): Promise<MonthUsage> {
    const counter = this.usage.get(`${tenantId}\u0000${month}`);
    return { agentMinutes: counter?.agentMinutes ?? 0, apiCalls: counter?.apiCalls ?? 0 };
  }

  async ping() {}

  private forgetExpiredKeys(now: number): void {
    for (const [key, expiresAt] of this.idempotency) if (expiresAt <= now) this.idempotency.delete(key);
  }

  private counter(tenantId: string, month: string): MemoryCounter {
    const key = `${tenantId}\u0000${month}`;
    let counter = this.usage.get(key);
    if (!counter) {
      counter = { agentMinutes: 0, apiCalls: 0 };
      this.usage.set(key, counter);
    }
    return counter;
  }
}

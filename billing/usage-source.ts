import type pg from 'pg';
import { billableUsageByHour, billableUsageByTenant } from '../tenants/metering/billable-usage.ts';

/** One tenant's metered usage in one UTC hour, as the metering store holds it (values as decimal text). */
export interface HourlyUsage {
  readonly tenantId: string;
  readonly hour: Date;
  readonly agentMinutes: string;
  readonly apiCalls: string;
}

export interface HourRange {
  /** Inclusive, on an hour boundary. */
  readonly from: Date;
  /** Exclusive, on an hour boundary. */
  readonly to: Date;
}

/**
 * Where billing reads hourly usage. The export and reconcile depend on this and nothing else of metering,
 * so the store behind it can change without touching them.
 */
export interface UsageSource {
  /** Tenants with usage in the range, sorted. */
  tenants(range: HourRange): Promise<string[]>;
  /** One tenant's hours in the range, oldest first. */
  hours(tenantId: string, range: HourRange): Promise<HourlyUsage[]>;
  /** Every tenant's totals over the range. */
  totals(range: HourRange): Promise<Map<string, { agentMinutes: string; apiCalls: string }>>;
}

/** A metering figure as decimal text with at most 3 places (the catalog stores numeric(14,3)). */
export function quantityText(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toFixed(3).replace(/\.?0+$/, '') || '0';
}

/**
 * The catalog's billable usage (tenants/metering): per tenant and hour, agent-minutes are the larger of what
 * the tenant reported and what its leases ran; API calls as reported.
 */
export class CatalogUsageSource implements UsageSource {
  constructor(private readonly db: pg.Pool) {}

  async tenants(range: HourRange): Promise<string[]> {
    if (range.from >= range.to) return [];
    return [...(await billableUsageByTenant(this.db, range)).keys()].sort();
  }

  async hours(tenantId: string, range: HourRange): Promise<HourlyUsage[]> {
    if (range.from >= range.to) return [];
    const rows = await billableUsageByHour(this.db, { ...range, tenantIds: [tenantId] });
    return rows.map((r) => ({
      tenantId,
      hour: new Date(r.hour),
      agentMinutes: quantityText(r.agentMinutes),
      apiCalls: quantityText(r.apiCalls),
    }));
  }

  async totals(range: HourRange): Promise<Map<string, { agentMinutes: string; apiCalls: string }>> {
    if (range.from >= range.to) return new Map();
    const totals = await billableUsageByTenant(this.db, range);
    return new Map(
      [...totals].map(([id, t]) => [
        id,
        { agentMinutes: quantityText(t.agentMinutes), apiCalls: quantityText(t.apiCalls) },
      ]),
    );
  }
}

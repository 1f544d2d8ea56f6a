import type pg from 'pg';

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

/** control.usage_hourly, written by the control plane's usage ingest with the daily row. */
export class CatalogUsageSource implements UsageSource {
  constructor(private readonly db: pg.Pool) {}

  async tenants(range: HourRange): Promise<string[]> {
    const { rows } = await this.db.query<{ tenant_id: string }>(
      'SELECT DISTINCT tenant_id FROM control.usage_hourly WHERE hour >= $1 AND hour < $2 ORDER BY tenant_id',
      [range.from, range.to],
    );
    return rows.map((r) => r.tenant_id);
  }

  async hours(tenantId: string, range: HourRange): Promise<HourlyUsage[]> {
    const { rows } = await this.db.query<{ hour: Date; agent_minutes: string; api_calls: string }>(
      `SELECT hour, agent_minutes::text, api_calls::text FROM control.usage_hourly
        WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour`,
      [tenantId, range.from, range.to],
    );
    return rows.map((r) => ({
      tenantId,
      hour: r.hour,
      agentMinutes: r.agent_minutes,
      apiCalls: r.api_calls,
    }));
  }

  async totals(range: HourRange): Promise<Map<string, { agentMinutes: string; apiCalls: string }>> {
    const { rows } = await this.db.query<{ tenant_id: string; agent_minutes: string; api_calls: string }>(
      `SELECT tenant_id, sum(agent_minutes)::text AS agent_minutes, sum(api_calls)::text AS api_calls
         FROM control.usage_hourly WHERE hour >= $1 AND hour < $2 GROUP BY tenant_id`,
      [range.from, range.to],
    );
    return new Map(rows.map((r) => [r.tenant_id, { agentMinutes: r.agent_minutes, apiCalls: r.api_calls }]));
  }
}

import type pg from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';

/** One accepted usage report, waiting to be written to PostgreSQL. */
export interface UsageReport {
  readonly tenantId: string;
  /** Null when the client sent no Idempotency-Key. */
  readonly idempotencyKey: string | null;
  /** UTC day the report was received, YYYY-MM-DD. */
  readonly day: string;
  readonly agentMinutes: number;
  readonly apiCalls: number;
}

// Reports whose idempotency key PostgreSQL already holds are dropped here too, so a report the cache
// forgot (after a Redis restart) is still counted once.
const FLUSH_SQL = `
WITH incoming AS (
  SELECT * FROM json_to_recordset($1::json)
    AS t(tenant_id text, idempotency_key text, day date, agent_minutes numeric, api_calls bigint)
), fresh AS (
  INSERT INTO control.usage_reports (tenant_id, idempotency_key)
  SELECT tenant_id, idempotency_key FROM incoming WHERE idempotency_key IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING tenant_id, idempotency_key
)
INSERT INTO control.usage AS u (tenant_id, day, agent_minutes, api_calls)
SELECT i.tenant_id, i.day, sum(i.agent_minutes), sum(i.api_calls)
  FROM incoming i
 WHERE i.idempotency_key IS NULL
    OR EXISTS (SELECT 1 FROM fresh f WHERE f.tenant_id = i.tenant_id AND f.idempotency_key = i.idempotency_key)
 GROUP BY i.tenant_id, i.day
ON CONFLICT (tenant_id, day) DO UPDATE
  SET agent_minutes = u.agent_minutes + EXCLUDED.agent_minutes, api_calls = u.api_calls + EXCLUDED.api_calls`;

/** SQLSTATE classes 22 (data exception) and 23 (integrity): retrying the same rows can never succeed. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * Buffers accepted usage reports and writes them in one statement every interval or every
 * `maxReports`, so PostgreSQL stays off the request path. A failed flush keeps the reports for the next one.
 */
export class UsageBatcher {
  private pending: UsageReport[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: {
      readonly intervalMs: number;
      readonly maxReports: number;
      readonly logger: Logger;
      readonly metrics: Metrics;
    },
  ) {
    this.timer = setInterval(() => void this.flush(), options.intervalMs);
    this.timer.unref();
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  add(report: UsageReport): void {
    this.pending.push(report);
    // Only on crossing the threshold: a slow flush must not queue one more flush per report.
    if (this.pending.length === this.options.maxReports) void this.flush();
  }

  /** Writes everything buffered so far; concurrent calls run one after another. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writePending());
    return this.flushing;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async writePending(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const seen = new Set<string>();
    const rows = batch.filter((r) => {
      if (r.idempotencyKey === null) return true;
      const key = `${r.tenantId}\u0000${r.idempotencyKey}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const started = performance.now();
    try {
      await this.write(rows);
      this.options.metrics.usageFlushes.inc({ result: 'ok' });
      this.options.metrics.usageFlushReports.observe(rows.length);
      this.options.metrics.usageFlushSeconds.observe((performance.now() - started) / 1000);
    } catch (error) {
      if (isDataError(error)) {
        await this.writePerTenant(rows);
        return;
      }
      this.pending = rows.concat(this.pending);
      this.options.metrics.usageFlushes.inc({ result: 'error' });
      this.options.logger.error({ err: error, reports: rows.length }, 'usage flush failed; kept for retry');
    }
  }

  /**
   * A data error in one tenant's reports would fail every retry of the whole batch and stop metering for
   * all tenants, so each tenant is written on its own and only the tenant whose data PostgreSQL refuses is
   * dropped (and logged with its reports). Connection errors keep the reports for the next flush.
   */
  private async writePerTenant(rows: UsageReport[]): Promise<void> {
    const byTenant = new Map<string, UsageReport[]>();
    for (const row of rows) byTenant.set(row.tenantId, [...(byTenant.get(row.tenantId) ?? []), row]);
    for (const [tenantId, own] of byTenant) {
      try {
        await this.write(own);
        this.options.metrics.usageFlushes.inc({ result: 'ok' });
      } catch (error) {
        if (isDataError(error)) {
          this.options.metrics.usageFlushes.inc({ result: 'rejected' });
          this.options.logger.error(
            { err: error, tenantId, reports: own },
            'usage reports refused by PostgreSQL; dropped',
          );
        } else {
          this.pending = own.concat(this.pending);
          this.options.metrics.usageFlushes.inc({ result: 'error' });
          this.options.logger.error(
            { err: error, tenantId, reports: own.length },
            'usage flush failed; kept for retry',
          );
        }
      }
    }
  }

  private async write(rows: readonly UsageReport[]): Promise<void> {
    // One JSON parameter (native stringify) and a prepared statement keep the flush cheap for Node and PostgreSQL.
    await this.pool.query({
      name: 'control-plane-usage-flush',
      text: FLUSH_SQL,
      values: [
        JSON.stringify(
          rows.map((r) => ({
            tenant_id: r.tenantId,
            idempotency_key: r.idempotencyKey,
            day: r.day,
            agent_minutes: r.agentMinutes,
            api_calls: r.apiCalls,
          })),
        ),
      ],
    });
  }
}

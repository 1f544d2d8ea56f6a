import type pg from 'pg';
import type { Logger } from 'pino';
import { HttpError, isCatalogUnreachable, StoreUnavailableError } from './errors.ts';
import type { Metrics } from './metrics.ts';

/** One usage report, to be written to PostgreSQL before it is acknowledged. */
export interface UsageReport {
  readonly tenantId: string;
  /** Null when the client sent no Idempotency-Key. */
  readonly idempotencyKey: string | null;
  /** UTC day the report was received, YYYY-MM-DD. */
  readonly day: string;
  /** UTC hour the report was received, ISO 8601 (see tenants/metering/hours.ts). */
  readonly hour: string;
  readonly agentMinutes: number;
  readonly apiCalls: number;
}

interface Waiting {
  readonly report: UsageReport;
  resolve(fresh: boolean): void;
  reject(error: unknown): void;
}

// The idempotency key becomes final in the same statement that counts the report, daily and hourly, so a
// report is either counted with its key or not at all. RETURNING names the keys this statement stored.
const FLUSH_SQL = `
WITH incoming AS (
  SELECT * FROM json_to_recordset($1::json)
    AS t(tenant_id text, idempotency_key text, day date, hour timestamptz, agent_minutes numeric, api_calls bigint)
), fresh AS (
  INSERT INTO control.usage_reports (tenant_id, idempotency_key)
  SELECT tenant_id, idempotency_key FROM incoming WHERE idempotency_key IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING tenant_id, idempotency_key
), kept AS (
  SELECT i.* FROM incoming i
   WHERE i.idempotency_key IS NULL
      OR EXISTS (SELECT 1 FROM fresh f WHERE f.tenant_id = i.tenant_id AND f.idempotency_key = i.idempotency_key)
), daily AS (
  INSERT INTO control.usage AS u (tenant_id, day, agent_minutes, api_calls)
  SELECT tenant_id, day, sum(agent_minutes), sum(api_calls) FROM kept GROUP BY tenant_id, day
  ON CONFLICT (tenant_id, day) DO UPDATE
    SET agent_minutes = u.agent_minutes + EXCLUDED.agent_minutes, api_calls = u.api_calls + EXCLUDED.api_calls
  RETURNING 1
), hourly AS (
  INSERT INTO control.usage_hourly AS h (tenant_id, hour, agent_minutes, api_calls)
  SELECT tenant_id, hour, sum(agent_minutes), sum(api_calls) FROM kept GROUP BY tenant_id, hour
  ON CONFLICT (tenant_id, hour) DO UPDATE
    SET agent_minutes = h.agent_minutes + EXCLUDED.agent_minutes, api_calls = h.api_calls + EXCLUDED.api_calls
  RETURNING 1
)
SELECT tenant_id, idempotency_key FROM fresh`;

/** SQLSTATE classes 22 (data exception) and 23 (integrity): retrying the same rows can never succeed. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** What the waiting request fails with: 503 while the catalog is down, 422 for data it refuses. */
function refusalOf(error: unknown): unknown {
  if (isCatalogUnreachable(error)) return new StoreUnavailableError('postgres', error);
  if (isDataError(error)) {
    return new HttpError(422, `usage report refused by the catalog: ${(error as Error).message}`);
  }
  return error;
}

const keyOf = (tenantId: string, idempotencyKey: string) => `${tenantId}\u0000${idempotencyKey}`;

/**
 * Writes usage reports to PostgreSQL in group commits: a write starts as soon as the previous one ends (or,
 * when idle, on the next turn of the event loop) and takes every report that arrived meanwhile (up to
 * `maxReports`). `record` resolves only once the report is committed, so an acknowledged report survives a
 * crash, and a retry of an unanswered one counts once.
 */
export class UsageBatcher {
  private waiting: Waiting[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: {
      readonly maxReports: number;
      readonly logger: Logger;
      readonly metrics: Metrics;
    },
  ) {}

  get pendingCount(): number {
    return this.waiting.length;
  }

  /**
   * Resolves true once the report is committed, false when PostgreSQL already held its idempotency key.
   * Rejects with StoreUnavailableError when the catalog cannot be reached (nothing was written).
   */
  record(report: UsageReport): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ report, resolve, reject });
      // An idle writer starts on the next turn of the event loop, so the requests that arrived together
      // share a write: starting at once wrote the first report alone and made the rest wait behind it.
      if (this.writing === null)
        this.writing = new Promise((turn) => setImmediate(turn)).then(() => this.drain());
    });
  }

  /** Resolves once every report recorded so far is written or refused. */
  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing;
  }

  close(): Promise<void> {
    return this.flush();
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.options.maxReports);
        await this.writeBatch(batch);
      }
    } finally {
      this.writing = null;
    }
  }

  private async writeBatch(batch: Waiting[]): Promise<void> {
    // A key twice in one batch: the first is written, the others are duplicates of it.
    const first = new Map<string, Waiting>();
    const rows: Waiting[] = [];
    const repeats: { of: Waiting; entry: Waiting }[] = [];
    for (const entry of batch) {
      const { idempotencyKey, tenantId } = entry.report;
      if (idempotencyKey === null) {
        rows.push(entry);
        continue;
      }
      const seen = first.get(keyOf(tenantId, idempotencyKey));
      if (seen === undefined) {
        first.set(keyOf(tenantId, idempotencyKey), entry);
        rows.push(entry);
      } else repeats.push({ of: seen, entry });
    }
    const outcome = new Map<Waiting, { fresh: boolean } | { error: unknown }>();
    const started = performance.now();
    try {
      const fresh = await this.write(rows.map((w) => w.report));
      for (const w of rows) outcome.set(w, { fresh: this.isFresh(w.report, fresh) });
      this.options.metrics.usageFlushes.inc({ result: 'ok' });
      this.options.metrics.usageFlushReports.observe(rows.length);
      this.options.metrics.usageFlushSeconds.observe((performance.now() - started) / 1000);
    } catch (error) {
      if (isDataError(error)) await this.writePerTenant(rows, outcome);
      else {
        this.options.metrics.usageFlushes.inc({ result: 'error' });
        for (const w of rows) outcome.set(w, { error: refusalOf(error) });
      }
    }
    for (const [w, result] of outcome) {
      if ('fresh' in result) w.resolve(result.fresh);
      else w.reject(result.error);
    }
    for (const { of, entry } of repeats) {
      const result = outcome.get(of)!;
      if ('fresh' in result) entry.resolve(false);
      else entry.reject(result.error);
    }
  }

  private isFresh(report: UsageReport, fresh: Set<string>): boolean {
    return report.idempotencyKey === null || fresh.has(keyOf(report.tenantId, report.idempotencyKey));
  }

  /**
   * A data error in one tenant's reports would fail the whole batch for every tenant, so each tenant is
   * written on its own and only the requests whose data PostgreSQL refuses fail.
   */
  private async writePerTenant(
    rows: Waiting[],
    outcome: Map<Waiting, { fresh: boolean } | { error: unknown }>,
  ): Promise<void> {
    const byTenant = new Map<string, Waiting[]>();
    for (const row of rows)
      byTenant.set(row.report.tenantId, [...(byTenant.get(row.report.tenantId) ?? []), row]);
    for (const [tenantId, own] of byTenant) {
      try {
        const fresh = await this.write(own.map((w) => w.report));
        for (const w of own) outcome.set(w, { fresh: this.isFresh(w.report, fresh) });
        this.options.metrics.usageFlushes.inc({ result: 'ok' });
      } catch (error) {
        this.options.metrics.usageFlushes.inc({ result: isDataError(error) ? 'rejected' : 'error' });
        if (isDataError(error)) {
          this.options.logger.error(
            { err: error, tenantId, reports: own.length },
            'usage reports refused by PostgreSQL',
          );
        }
        for (const w of own) outcome.set(w, { error: refusalOf(error) });
      }
    }
  }

  private async write(rows: readonly UsageReport[]): Promise<Set<string>> {
    // One JSON parameter (native stringify) and a prepared statement keep the write cheap for Node and PostgreSQL.
    const result = await this.pool.query<{ tenant_id: string; idempotency_key: string }>({
      name: 'control-plane-usage-write',
      text: FLUSH_SQL,
      values: [
        JSON.stringify(
          rows.map((r) => ({
            tenant_id: r.tenantId,
            idempotency_key: r.idempotencyKey,
            day: r.day,
            hour: r.hour,
            agent_minutes: r.agentMinutes,
            api_calls: r.apiCalls,
          })),
        ),
      ],
    });
    return new Set(result.rows.map((r) => keyOf(r.tenant_id, r.idempotency_key)));
  }
}

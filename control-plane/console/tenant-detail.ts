import type pg from 'pg';
import { type AuditEvent, auditTrail } from '../../tenants/audit.ts';
import { getTenant, type TenantDetails } from '../../tenants/provisioner.ts';

export interface ApiKeyRow {
  readonly prefix: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export interface DailyUsage {
  readonly day: string;
  readonly agentMinutes: number;
  readonly apiCalls: number;
}

/** A tenant's keys by prefix, newest first; the hash never leaves the catalog. */
export async function apiKeysOf(pool: pg.Pool, tenantId: string): Promise<ApiKeyRow[]> {
  const { rows } = await pool.query<{
    prefix: string;
    created_at: Date;
    revoked_at: Date | null;
    last_used_at: Date | null;
  }>(
    `SELECT prefix, created_at, revoked_at, last_used_at FROM control.api_keys
      WHERE tenant_id = $1 ORDER BY revoked_at IS NOT NULL, created_at DESC LIMIT 50`,
    [tenantId],
  );
  return rows.map((r) => ({
    prefix: r.prefix,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  }));
}

/** Usage per UTC day over the last `days` days, with a zero row for each day without reports. */
export async function dailyUsage(pool: pg.Pool, tenantId: string, days: number, now = new Date()) {
  const { rows } = await pool.query<{ day: string; agent_minutes: number; api_calls: number }>(
    `SELECT to_char(d, 'YYYY-MM-DD') AS day, coalesce(u.agent_minutes, 0)::float8 AS agent_minutes,
            coalesce(u.api_calls, 0)::float8 AS api_calls
       FROM generate_series($2::date - ($3::int - 1), $2::date, interval '1 day') AS d
       LEFT JOIN control.usage u ON u.tenant_id = $1 AND u.day = d::date
      ORDER BY d`,
    [tenantId, now.toISOString().slice(0, 10), days],
  );
  return rows.map((r): DailyUsage => ({ day: r.day, agentMinutes: r.agent_minutes, apiCalls: r.api_calls }));
}

export interface TenantDetailView {
  readonly tenant: TenantDetails;
  readonly guardState: string;
  readonly keys: ApiKeyRow[];
  readonly audit: AuditEvent[];
  readonly usage: DailyUsage[];
}

/** Everything the tenant detail page shows; null when the tenant does not exist. */
export async function tenantDetail(pool: pg.Pool, tenantId: string): Promise<TenantDetailView | null> {
  const tenant = await getTenant(pool, tenantId);
  if (tenant === null) return null;
  const [keys, audit, usage, guard] = await Promise.all([
    apiKeysOf(pool, tenantId),
    auditTrail(pool, tenantId),
    dailyUsage(pool, tenantId, 30),
    pool.query<{ guard_state: string }>('SELECT guard_state FROM control.quota_state WHERE tenant_id = $1', [
      tenantId,
    ]),
  ]);
  // Newest first, and a bounded page: a tenant of many years has thousands of events.
  return {
    tenant,
    keys,
    audit: audit.slice(-200).reverse(),
    usage,
    guardState: guard.rows[0]?.guard_state ?? 'ok',
  };
}

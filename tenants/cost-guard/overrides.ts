import type pg from 'pg';
import { recordAudit } from '../audit.ts';
import { TenantNotFoundError } from '../errors.ts';

/** Thrown for an override the guard cannot accept; one line naming the value. */
export class OverrideError extends Error {
  override readonly name = 'OverrideError';
}

/** Overrides are for a deal or an investigation, not a permanent exemption. */
export const MAX_OVERRIDE_DAYS = 31;

export interface Override {
  readonly tenantId: string;
  readonly expiresAt: Date;
  readonly reason: string;
  readonly actor: string;
  readonly createdAt: Date;
}

/** Parses `--until`: an ISO date or time in the future, at most MAX_OVERRIDE_DAYS ahead. */
export function parseOverrideExpiry(text: string, now: Date): Date {
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) throw new OverrideError(`'until' (${text}) is not an ISO date or time`);
  if (at <= now) throw new OverrideError(`'until' (${text}) must be in the future`);
  if (at.getTime() - now.getTime() > MAX_OVERRIDE_DAYS * 86_400_000) {
    throw new OverrideError(`'until' (${text}) is more than ${MAX_OVERRIDE_DAYS} days ahead`);
  }
  return at;
}

/** Sets (or replaces) the tenant's override: until it expires the guard enters no new hard state. */
export async function setOverride(
  pool: pg.Pool,
  entry: { tenantId: string; expiresAt: Date; reason: string; actor: string },
): Promise<void> {
  if (entry.reason.trim() === '') throw new OverrideError(`'reason' must say why the tenant is exempt`);
  const { rowCount } = await pool.query('SELECT 1 FROM control.tenants WHERE id = $1', [entry.tenantId]);
  if (!rowCount) throw new TenantNotFoundError(entry.tenantId);
  await pool.query(
    `INSERT INTO control.cost_guard_overrides (tenant_id, expires_at, reason, actor) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, reason = EXCLUDED.reason,
       actor = EXCLUDED.actor, created_at = now()`,
    [entry.tenantId, entry.expiresAt, entry.reason, entry.actor],
  );
  await recordAudit(pool, {
    tenantId: entry.tenantId,
    actor: entry.actor,
    action: 'cost-guard.override-set',
    reason: entry.reason,
    evidence: { expiresAt: entry.expiresAt.toISOString() },
  });
}

export async function clearOverride(pool: pg.Pool, tenantId: string, actor: string): Promise<boolean> {
  const { rowCount } = await pool.query('DELETE FROM control.cost_guard_overrides WHERE tenant_id = $1', [
    tenantId,
  ]);
  if (rowCount) await recordAudit(pool, { tenantId, actor, action: 'cost-guard.override-cleared' });
  return Boolean(rowCount);
}

/** Live overrides, soonest expiry first. */
export async function listOverrides(pool: pg.Pool, now: Date): Promise<Override[]> {
  const { rows } = await pool.query<{
    tenant_id: string;
    expires_at: Date;
    reason: string;
    actor: string;
    created_at: Date;
  }>(
    `SELECT tenant_id, expires_at, reason, actor, created_at FROM control.cost_guard_overrides
      WHERE expires_at > $1 ORDER BY expires_at, tenant_id`,
    [now],
  );
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    expiresAt: r.expires_at,
    reason: r.reason,
    actor: r.actor,
    createdAt: r.created_at,
  }));
}

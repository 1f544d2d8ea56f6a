import pg from 'pg';
import { AUDIT_COLUMNS, auditValues } from '../audit.ts';
import { canTransition, TenantStateError, type TenantStatus } from './status.ts';

/**
 * The platform's termination hook. Every status change sends a NOTIFY on this channel (JSON
 * `{tenantId, status, action}`, delivered on commit). Task runners LISTEN here and stop the tenant's
 * running tasks; the admission check already refuses new ones.
 */
export const LIFECYCLE_CHANNEL = 'tenant_lifecycle';

export interface Transition {
  readonly tenantId: string;
  readonly from: TenantStatus;
  readonly to: TenantStatus;
  /** Who acts: an operator (`cli:<user>`), `cost-guard`, `control-plane:<sub>`. */
  readonly actor: string;
  /** The audit action. @default `tenant.<to>` */
  readonly action?: string;
  readonly reason?: string;
  readonly evidence?: Record<string, unknown>;
}

/**
 * One statement: the status change (only from `from`), its audit row and its NOTIFY, so none of the three
 * can happen without the others. Literals are inlined so callers can batch it with other statements.
 */
export function transitionStatement(t: Transition): string {
  if (!canTransition(t.from, t.to)) {
    throw new TenantStateError(`tenant '${t.tenantId}' cannot go from ${t.from} to ${t.to}`);
  }
  const action = t.action ?? `tenant.${t.to}`;
  const id = pg.escapeLiteral(t.tenantId);
  const audit = auditValues({
    tenantId: t.tenantId,
    actor: t.actor,
    action,
    fromStatus: t.from,
    toStatus: t.to,
    ...(t.reason === undefined ? {} : { reason: t.reason }),
    ...(t.evidence === undefined ? {} : { evidence: t.evidence }),
  });
  const payload = pg.escapeLiteral(JSON.stringify({ tenantId: t.tenantId, status: t.to, action }));
  return `WITH moved AS (
     UPDATE control.tenants SET status = ${pg.escapeLiteral(t.to)}, updated_at = now(), status_changed_at = now()
      WHERE id = ${id} AND status = ${pg.escapeLiteral(t.from)} RETURNING id),
   audit AS (INSERT INTO control.audit_events (${AUDIT_COLUMNS}) SELECT ${audit} FROM moved),
   notified AS (SELECT pg_notify(${pg.escapeLiteral(LIFECYCLE_CHANNEL)}, ${payload}) FROM moved)
   SELECT (SELECT count(*)::int FROM moved) AS moved, (SELECT count(*)::int FROM notified) AS notified`;
}

/**
 * Changes the tenant's status, writes the audit row and sends the NOTIFY, inside the caller's transaction.
 * Throws when the tenant is no longer in `from` (someone moved it first).
 */
export async function transition(client: pg.ClientBase, t: Transition): Promise<void> {
  const { rows } = await client.query<{ moved: number }>(transitionStatement(t));
  if (rows[0]?.moved !== 1) {
    throw new TenantStateError(`tenant '${t.tenantId}' is no longer ${t.from}; nothing changed`);
  }
}

import pg from 'pg';

/** One entry of a tenant's audit trail: who did what, why, and on what evidence. */
export interface AuditEntry {
  /** Tenant the action concerns; may name a tenant that no longer exists. */
  readonly tenantId: string;
  /** Who acted: an operator, `cli:<user>`, `cost-guard`, `control-plane:<sub>`. */
  readonly actor: string;
  /** What happened, e.g. `tenant.provisioned`, `tenant.tier-changed`, `api-key.issued`. */
  readonly action: string;
  /** Status before a transition. @default - not a status transition */
  readonly fromStatus?: string;
  /** Status after a transition. @default - not a status transition */
  readonly toStatus?: string;
  /** Why, in words. @default - none given */
  readonly reason?: string;
  /** Facts the action relied on (figures, step timings, request ids). @default - none */
  readonly evidence?: Record<string, unknown>;
}

export interface AuditEvent extends AuditEntry {
  readonly id: number;
  readonly at: Date;
}

/** Thrown when an audit value holds a NUL character: PostgreSQL text cannot store one. */
export class AuditTextError extends Error {
  override readonly name = 'AuditTextError';
  constructor(
    readonly field: string,
    readonly value: string,
  ) {
    super(`${field} ${JSON.stringify(value)} contains a NUL character, which PostgreSQL text cannot store`);
  }
}

/** Throws AuditTextError when a user-supplied audit value (actor, reason) holds a NUL character. */
export function checkAuditText(field: string, value: string | undefined): void {
  if (value?.includes('\u0000')) throw new AuditTextError(field, value);
}

function checkEntry(entry: AuditEntry): void {
  for (const field of ['tenantId', 'actor', 'action', 'fromStatus', 'toStatus', 'reason'] as const) {
    checkAuditText(field, entry[field]);
  }
  if (entry.evidence !== undefined) {
    JSON.stringify(entry.evidence, (key: string, value: unknown) => {
      checkAuditText('evidence key', key);
      if (typeof value === 'string') checkAuditText(`evidence.${key}`, value);
      return value;
    });
  }
}

/** Appends one event to control.audit_events. Run it inside the caller's transaction to keep it atomic. */
export async function recordAudit(db: pg.Pool | pg.PoolClient, entry: AuditEntry): Promise<void> {
  checkEntry(entry);
  await db.query(
    `INSERT INTO control.audit_events (tenant_id, actor, action, from_status, to_status, reason, evidence)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      entry.tenantId,
      entry.actor,
      entry.action,
      entry.fromStatus ?? null,
      entry.toStatus ?? null,
      entry.reason ?? null,
      entry.evidence === undefined ? null : JSON.stringify(entry.evidence),
    ],
  );
}

/** The columns of control.audit_events that an entry fills, in the order auditValues lists them. */
export const AUDIT_COLUMNS = 'tenant_id, actor, action, from_status, to_status, reason, evidence';

/** One audit entry's values as escaped literals, for statements that inline them (see auditInsertStatement). */
export function auditValues(entry: AuditEntry): string {
  // A NUL would otherwise fail the whole batch with a bare protocol error ("invalid message format").
  checkEntry(entry);
  const literal = (v: string | undefined) => (v === undefined ? 'NULL' : pg.escapeLiteral(v));
  return [
    literal(entry.tenantId),
    literal(entry.actor),
    literal(entry.action),
    literal(entry.fromStatus),
    literal(entry.toStatus),
    literal(entry.reason),
    entry.evidence === undefined ? 'NULL' : `${literal(JSON.stringify(entry.evidence))}::jsonb`,
  ].join(', ');
}

/**
 * The INSERT of one audit event with its values inlined as escaped literals, for callers that batch it
 * into one multi-statement transaction (the simple query protocol takes no parameters).
 */
export function auditInsertStatement(entry: AuditEntry): string {
  return `INSERT INTO control.audit_events (${AUDIT_COLUMNS})
     VALUES (${auditValues(entry)})`;
}

/** A tenant's audit trail, oldest first. */
export async function auditTrail(db: pg.Pool | pg.PoolClient, tenantId: string): Promise<AuditEvent[]> {
  const { rows } = await db.query<{
    id: string;
    at: Date;
    tenant_id: string;
    actor: string;
    action: string;
    from_status: string | null;
    to_status: string | null;
    reason: string | null;
    evidence: Record<string, unknown> | null;
  }>(
    `SELECT id, at, tenant_id, actor, action, from_status, to_status, reason, evidence
       FROM control.audit_events WHERE tenant_id = $1 ORDER BY at, id`,
    [tenantId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    tenantId: r.tenant_id,
    actor: r.actor,
    action: r.action,
    ...(r.from_status === null ? {} : { fromStatus: r.from_status }),
    ...(r.to_status === null ? {} : { toStatus: r.to_status }),
    ...(r.reason === null ? {} : { reason: r.reason }),
    ...(r.evidence === null ? {} : { evidence: r.evidence }),
  }));
}

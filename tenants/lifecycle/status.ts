/** Tenant statuses, in lifecycle order; `status.test.ts` holds them against the SQL enum control.tenant_status. */
export const TENANT_STATUSES = [
  'provisioning',
  'active',
  'limited',
  'suspended',
  'offboarding',
  'archived',
] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

/** The statuses each status may move to. A move not listed here is refused before anything changes. */
export const TRANSITIONS: Readonly<Record<TenantStatus, readonly TenantStatus[]>> = {
  provisioning: ['active'],
  active: ['limited', 'suspended', 'offboarding'],
  limited: ['active', 'suspended', 'offboarding'],
  suspended: ['active', 'offboarding'],
  offboarding: ['archived'],
  archived: [],
};

export function canTransition(from: TenantStatus, to: TenantStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses from which `to` can be reached in one transition. */
export function statusesLeadingTo(to: TenantStatus): TenantStatus[] {
  return TENANT_STATUSES.filter((from) => canTransition(from, to));
}

export function isTenantStatus(value: string): value is TenantStatus {
  return (TENANT_STATUSES as readonly string[]).includes(value);
}

/** A command met a tenant in a status it does not apply to; one line, nothing changed. */
export class TenantStateError extends Error {
  override readonly name = 'TenantStateError';
}

// Unique tenant ids per run, valid under tenants/tenant-id.ts (3-30 chars, DNS label, starts with a letter).

/** A short id for one run: time in base 36 plus random characters, lowercase. */
export function newRunId(now: number = Date.now(), random: () => number = Math.random): string {
  const time = now.toString(36).slice(-6);
  let tail = '';
  for (let i = 0; i < 4; i += 1) tail += Math.floor(random() * 36).toString(36);
  return `${time}${tail}`;
}

/** Every load-gate tenant id starts with this; the gate retires left-over ones by it. */
export const SUITE_TENANT_PREFIX = 'lg-';

/** The tenant id for one role in one run, e.g. `lg-mf3k2xa9q1-hot`. */
export function tenantIdFor(runId: string, role: string): string {
  return `${SUITE_TENANT_PREFIX}${runId}-${role}`;
}

/** The run id the gate chose (passed as RUN_ID), or a new one when a suite runs under k6 alone. */
export function runIdFrom(env: Record<string, string | undefined>): string {
  const given = env.RUN_ID;
  return given !== undefined && /^[a-z0-9]{1,12}$/.test(given) ? given : newRunId();
}

import type { MeterKey } from './meters.ts';

/** The hour as `YYYY-MM-DDTHHZ`, the form identifiers carry. */
export function hourLabel(hour: Date): string {
  return `${hour.toISOString().slice(0, 13)}Z`;
}

/**
 * The meter event identifier of one bucket revision: `ap-<env>:<tenant>:<meter>:<hour>:r<revision>`, for
 * example `ap-prod:acme:agent_minutes:2026-11-03T14Z:r0`. The same bucket and revision always give the same
 * identifier, so a resend is dropped by Stripe's uniqueness rule; a correction is the next revision. The
 * environment keeps two environments sharing one test account apart. At most 76 characters (Stripe: 100).
 */
export function bucketIdentifier(
  env: string,
  tenantId: string,
  meter: MeterKey,
  hour: Date,
  revision: number,
): string {
  return `ap-${env}:${tenantId}:${meter}:${hourLabel(hour)}:r${revision}`;
}

/**
 * The event time of a revision: the start of its hour plus one second per revision, so a later revision is
 * the newest event of the window by time as well as by arrival.
 */
export function revisionTimestamp(hour: Date, revision: number): Date {
  return new Date(hour.getTime() + revision * 1000);
}

/** Revisions one hour can take (each moves the event time by a second inside the hour). */
export const MAX_REVISION = 3599;

// Node side: retires load-gate tenants that a run left active because k6 died before its teardown.
import { z } from 'zod';
import { SUITE_TENANT_PREFIX } from './lib/ids.ts';

const listSchema = z.object({
  tenants: z.array(z.object({ id: z.string(), status: z.string(), createdAt: z.iso.datetime() })),
});

/**
 * A suite tenant older than this belongs to no live run: the gate's operator token lasts 2 h, so no run
 * can still be using it.
 */
export const STALE_SUITE_TENANT_MS = 3 * 3_600_000;

export interface RetireOptions {
  readonly baseUrl: string;
  readonly operatorToken: string;
  /** Retire this run's tenants, whatever their age. */
  readonly runId?: string;
  /** ms since the epoch. @default Date.now() */
  readonly now?: number;
}

/** Thrown when the control plane cannot list or suspend; one line naming the call. */
export class SuiteTenantError extends Error {
  override readonly name = 'SuiteTenantError';
}

/**
 * Suspends every active load-gate tenant of `runId`, and every one older than STALE_SUITE_TENANT_MS, through
 * the operator API (audited as the gate). Returns the ids it suspended.
 */
export async function retireSuiteTenants(options: RetireOptions): Promise<string[]> {
  const headers = { authorization: `Bearer ${options.operatorToken}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${options.baseUrl}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok)
      throw new SuiteTenantError(`${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as unknown;
  };
  const listed = listSchema.safeParse(await call('GET', '/v1/tenants'));
  if (!listed.success) throw new SuiteTenantError('GET /v1/tenants answered an unexpected shape');
  const now = options.now ?? Date.now();
  const ours = options.runId === undefined ? null : `${SUITE_TENANT_PREFIX}${options.runId}-`;
  const leftOver = listed.data.tenants.filter(
    (t) =>
      t.status === 'active' &&
      t.id.startsWith(SUITE_TENANT_PREFIX) &&
      ((ours !== null && t.id.startsWith(ours)) || now - Date.parse(t.createdAt) > STALE_SUITE_TENANT_MS),
  );
  for (const tenant of leftOver) {
    await call('POST', `/v1/tenants/${tenant.id}/suspend`, {
      reason: 'load-gate tenant left active: its run ended without teardown',
    });
  }
  return leftOver.map((t) => t.id);
}

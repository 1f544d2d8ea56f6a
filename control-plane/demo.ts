import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type pg from 'pg';
import pino from 'pino';
import type { EnvironmentConfig } from '../config/environments.ts';
import type { CellDirectory } from '../tenants/cells.ts';
import { loadControlPlaneConfig } from './config.ts';
import { buildServer } from './server.ts';

export interface ControlPlaneDemoOptions {
  readonly pool: pg.Pool;
  readonly cells: CellDirectory;
  readonly env: EnvironmentConfig;
  /** An active tenant whose limits the demo exercises. */
  readonly tenantId: string;
  /** Another tenant, whose routes the first tenant's key must not reach. */
  readonly otherTenantId: string;
}

/**
 * Drives the real service in-process (in-memory limiter, no listener): an operator issues a key, the tenant
 * reads its limits, takes its task slots until admission refuses, bursts into the rate limit, and tries
 * another tenant's route. The key is revoked at the end. Returns one line per step.
 */
export async function runControlPlaneDemo(options: ControlPlaneDemoOptions): Promise<string[]> {
  const secret = randomBytes(32).toString('hex');
  const config = loadControlPlaneConfig({ ENV: options.env.name, JWT_SECRET: secret, LOG_LEVEL: 'silent' });
  const app = await buildServer({
    config,
    pool: options.pool,
    cells: options.cells,
    redis: null,
    environment: options.env,
    logger: pino({ level: 'silent' }),
  });
  const lines: string[] = [];
  try {
    const operator = await new SignJWT({ role: 'operator' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('demo')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    const id = options.tenantId;
    const issued = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${id}/api-keys`,
      headers: { authorization: `Bearer ${operator}` },
    });
    const { key, prefix } = issued.json() as { key: string; prefix: string };
    lines.push(`operator issued a key for ${id}: HTTP ${issued.statusCode}, prefix ${prefix}`);
    const tenant = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    const me = await app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: { authorization: tenant.authorization },
    });
    const body = me.json() as { tier: string; status: string; limits: { concurrentTasks: number } };
    lines.push(
      `GET /v1/me: tier ${body.tier}, status ${body.status}, ${body.limits.concurrentTasks} concurrent task(s)`,
    );

    const decisions: string[] = [];
    for (let task = 1; task <= body.limits.concurrentTasks + 1; task++) {
      const admission = await app.inject({
        method: 'POST',
        url: '/v1/admission',
        headers: tenant,
        payload: { taskId: `demo-task-${task}` },
      });
      const answer = admission.json() as { decision: string; reason?: string };
      decisions.push(`${answer.decision}${answer.reason ? ` (${answer.reason})` : ''}`);
    }
    lines.push(`POST /v1/admission x${decisions.length}: ${decisions.join(', ')}`);
    for (let task = 1; task <= body.limits.concurrentTasks; task++) {
      await app.inject({ method: 'POST', url: `/v1/admission/demo-task-${task}/release`, headers: tenant });
    }

    let allowed = 0;
    let refusal: { retryAfter: string | undefined; limit: string | undefined } | undefined;
    while (refusal === undefined && allowed < 10_000) {
      const response = await app.inject({
        method: 'GET',
        url: '/v1/me',
        headers: { authorization: tenant.authorization },
      });
      if (response.statusCode === 429) {
        refusal = {
          retryAfter: response.headers['retry-after']?.toString(),
          limit: response.headers['ratelimit-limit']?.toString(),
        };
      } else {
        allowed++;
      }
    }
    lines.push(
      `burst: ${allowed} more request(s) answered, then 429 with Retry-After ${refusal?.retryAfter ?? '-'} s ` +
        `(RateLimit-Limit ${refusal?.limit ?? '-'} per second)`,
    );

    const crossing = await app.inject({
      method: 'GET',
      url: `/v1/tenants/${options.otherTenantId}`,
      headers: { authorization: tenant.authorization },
    });
    lines.push(
      `${id}'s key on GET /v1/tenants/${options.otherTenantId}: HTTP ${crossing.statusCode} (refused)`,
    );

    const revoked = await app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${id}/api-keys/${prefix}`,
      headers: { authorization: `Bearer ${operator}` },
    });
    lines.push(`operator revoked the key: HTTP ${revoked.statusCode}`);
  } finally {
    await app.close();
  }
  return lines;
}

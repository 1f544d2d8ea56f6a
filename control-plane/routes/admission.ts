import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ControlPlaneContext } from '../context.ts';
import { parseInput } from '../errors.ts';
import { billingMonth } from '../tenant-cache.ts';

const taskId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -');
const admissionBody = z.strictObject({ taskId });

/** Why a heartbeat tells the runner to stop. */
export type StopReason =
  | 'tenant-limited'
  | 'tenant-suspended'
  | 'agent-minutes'
  | 'max-runtime'
  | 'lease-lost';

/**
 * Admission grants a lease on a concurrency slot; the runner heartbeats it and is told to stop when
 * the tenant is limited or suspended, its agent-minutes are used up, or the task passed its tier's
 * maximum runtime. Agent-minutes are counted from the leases; the quota counts the largest of leased,
 * reported and billed (the catalog's hourly figure, tenants/metering) minutes.
 */
export function admissionRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const heartbeatSeconds = ctx.config.LEASE_HEARTBEAT_MS / 1000;
  const clock = ctx.clock ?? Date.now;

  app.post('/v1/admission', async (request) => {
    const tenant = request.tenant!;
    const body = parseInput(admissionBody, request.body, 'body');
    if (tenant.status !== 'active') {
      ctx.metrics.admissionDecisions.inc({ decision: 'deny', reason: 'status' });
      return { decision: 'deny', reason: `tenant is ${tenant.status}` };
    }
    const { tier } = tenant;
    const month = billingMonth(clock());
    const reported = await ctx.store.monthUsage(tenant.id, month);
    const result = await ctx.leases.grant(tenant.id, month, body.taskId, {
      concurrentTasks: tier.concurrentTasks,
      agentMinutesPerMonth: tier.agentMinutesPerMonth,
      apiCallsPerMonth: tier.apiCallsPerMonth,
      reportedAgentMinutes: Math.max(reported.agentMinutes, tenant.billedAgentMinutes),
      reportedApiCalls: reported.apiCalls,
    });
    if (result.granted) {
      ctx.metrics.admissionDecisions.inc({ decision: 'allow', reason: 'ok' });
      return {
        decision: 'allow',
        lease: {
          taskId: body.taskId,
          expiresAt: new Date(result.lease.expiresAt).toISOString(),
          heartbeatSeconds,
          maxRuntimeSeconds: tier.maxTaskMinutes * 60,
        },
      };
    }
    ctx.metrics.admissionDecisions.inc({ decision: 'deny', reason: result.reason });
    const value = Math.round(result.value * 1000) / 1000;
    const reason =
      result.reason === 'concurrency'
        ? `concurrent tasks at the tier limit (${value}/${tier.concurrentTasks})`
        : result.reason === 'agent-minutes'
          ? `monthly agent-minutes quota used up (${value}/${tier.agentMinutesPerMonth})`
          : `monthly API-call quota used up (${value}/${tier.apiCallsPerMonth})`;
    return { decision: 'deny', reason };
  });

  app.post<{ Params: { taskId: string } }>('/v1/admission/:taskId/heartbeat', async (request) => {
    const tenant = request.tenant!;
    const id = parseInput(taskId, request.params.taskId, 'taskId');
    const month = billingMonth(clock());
    const stop = async (reason: StopReason, detail: string) => {
      await ctx.leases.end(tenant.id, month, id);
      ctx.metrics.leaseStops.inc({ reason });
      return { action: 'stop' as const, reason, detail };
    };
    const beat = await ctx.leases.heartbeat(tenant.id, month, id);
    if (!beat.live) return stop('lease-lost', `task ${id} holds no live lease: it expired or was released`);
    if (tenant.status === 'limited' || tenant.status === 'suspended') {
      return stop(`tenant-${tenant.status}`, `tenant is ${tenant.status}`);
    }
    if (tenant.status !== 'active') return stop('lease-lost', `tenant is ${tenant.status}`);
    const reported = await ctx.store.monthUsage(tenant.id, month);
    const minutes = Math.max(beat.leasedMinutes, reported.agentMinutes, tenant.billedAgentMinutes);
    const quota = tenant.tier.agentMinutesPerMonth;
    if (minutes >= quota) {
      return stop('agent-minutes', `monthly agent-minutes quota used up (${minutes.toFixed(1)}/${quota})`);
    }
    const maxRuntimeMs = tenant.tier.maxTaskMinutes * 60_000;
    if (clock() - beat.lease.startedAt >= maxRuntimeMs) {
      return stop('max-runtime', `task ran past the tier's ${tenant.tier.maxTaskMinutes} minute maximum`);
    }
    return { action: 'continue' as const, expiresAt: new Date(beat.lease.expiresAt).toISOString() };
  });

  app.post<{ Params: { taskId: string } }>('/v1/admission/:taskId/release', async (request) => {
    const tenant = request.tenant!;
    const id = parseInput(taskId, request.params.taskId, 'taskId');
    return { released: await ctx.leases.end(tenant.id, billingMonth(clock()), id) };
  });
}

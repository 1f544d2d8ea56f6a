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

/** Admission of agent tasks against the tenant's status, monthly quota and concurrent-task slots. */
export function admissionRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.post('/v1/admission', async (request) => {
    const tenant = request.tenant!;
    const body = parseInput(admissionBody, request.body, 'body');
    if (tenant.status !== 'active') {
      ctx.metrics.admissionDecisions.inc({ decision: 'deny', reason: 'status' });
      return { decision: 'deny', reason: `tenant is ${tenant.status}` };
    }
    const { tier } = tenant;
    const result = await ctx.store.admit(tenant.id, billingMonth(), body.taskId, {
      concurrentTasks: tier.concurrentTasks,
      agentMinutesPerMonth: tier.agentMinutesPerMonth,
      apiCallsPerMonth: tier.apiCallsPerMonth,
    });
    if (result.allowed) {
      ctx.metrics.admissionDecisions.inc({ decision: 'allow', reason: 'ok' });
      return { decision: 'allow' };
    }
    ctx.metrics.admissionDecisions.inc({ decision: 'deny', reason: result.reason });
    const reason =
      result.reason === 'concurrency'
        ? `concurrent tasks at the tier limit (${result.value}/${tier.concurrentTasks})`
        : result.reason === 'agent-minutes'
          ? `monthly agent-minutes quota used up (${result.value}/${tier.agentMinutesPerMonth})`
          : `monthly API-call quota used up (${result.value}/${tier.apiCallsPerMonth})`;
    return { decision: 'deny', reason };
  });

  app.post<{ Params: { taskId: string } }>('/v1/admission/:taskId/release', async (request) => {
    const tenant = request.tenant!;
    const id = parseInput(taskId, request.params.taskId, 'taskId');
    return { released: await ctx.store.release(tenant.id, id) };
  });
}

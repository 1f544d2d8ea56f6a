import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { hourOf } from '../../tenants/metering/hours.ts';
import type { ControlPlaneContext } from '../context.ts';
import { parseInput } from '../errors.ts';
import { billingMonth, utcDay } from '../tenant-cache.ts';

const usageBody = z.strictObject({
  agentMinutes: z.number().min(0).max(1_000_000).default(0),
  apiCalls: z.number().int().min(0).max(1_000_000_000).default(0),
});

const idempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'must be 1 to 200 visible ASCII characters')
  .optional();

/** Routes a tenant calls about itself; the tenant always comes from the API key, never from the request. */
export function tenantSelfRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.get('/v1/me', async (request) => {
    const tenant = request.tenant!;
    const month = billingMonth();
    const [usage, activeTasks] = await Promise.all([
      ctx.store.monthUsage(tenant.id, month),
      ctx.leases.activeLeases(tenant.id),
    ]);
    return {
      id: tenant.id,
      tier: tenant.tier.name,
      status: tenant.status,
      limits: {
        agentMinutesPerMonth: tenant.tier.agentMinutesPerMonth,
        apiCallsPerMonth: tenant.tier.apiCallsPerMonth,
        requestsPerSecond: tenant.tier.rateLimit.requestsPerSecond,
        burst: tenant.tier.rateLimit.burst,
        concurrentTasks: tenant.tier.concurrentTasks,
      },
      usage: { period: month, agentMinutes: usage.agentMinutes, apiCalls: usage.apiCalls, activeTasks },
    };
  });

  app.post('/v1/usage', async (request, reply) => {
    const tenant = request.tenant!;
    // No body is an empty report; a JSON null is not.
    const body = parseInput(usageBody, request.body === undefined ? {} : request.body, 'body');
    const key = parseInput(idempotencyKey, request.headers['idempotency-key'], 'Idempotency-Key header');
    const now = Date.now();
    // numeric(14,3) in the catalog: round here so Redis and PostgreSQL agree.
    const agentMinutes = Math.round(body.agentMinutes * 1000) / 1000;
    const usage = { agentMinutes, apiCalls: body.apiCalls };
    // PostgreSQL first: the answer 202 means the report is committed with its key. The Redis counters follow,
    // deduplicated by the same key, so a retry after a crash between the two still brings them level.
    const fresh = await ctx.usage.record({
      tenantId: tenant.id,
      idempotencyKey: key ?? null,
      day: utcDay(now),
      hour: hourOf(now),
      ...usage,
    });
    await ctx.store.recordUsage(tenant.id, billingMonth(now), key ?? null, usage);
    ctx.metrics.usageReports.inc({ duplicate: String(!fresh) });
    return reply.code(202).send({ duplicate: !fresh });
  });
}

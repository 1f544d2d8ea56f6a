import type { FastifyInstance } from 'fastify';
import { usageStanding } from '../../tenants/cost-guard/projection.ts';
import { parseTenantId } from '../../tenants/tenant-id.ts';
import type { ControlPlaneContext } from '../context.ts';
import { HttpError } from '../errors.ts';
import type { TenantState } from '../tenant-cache.ts';
import { billingMonth } from '../tenant-cache.ts';

/**
 * A tenant's month so far, as GET /v1/usage answers it: the portal and the console show the same
 * object, so there is one computation of quota use and of the projection.
 */
export async function tenantStanding(ctx: ControlPlaneContext, tenant: TenantState) {
  const now = (ctx.clock ?? Date.now)();
  const month = billingMonth(now);
  const [reported, leased, activeTasks] = await Promise.all([
    ctx.store.monthUsage(tenant.id, month),
    ctx.leases.leasedMinutes(tenant.id, month),
    ctx.leases.activeLeases(tenant.id),
  ]);
  return {
    tenantId: tenant.id,
    tier: tenant.tier.name,
    status: tenant.status,
    activeTasks,
    usage: usageStanding(
      tenant.tier,
      {
        reportedAgentMinutes: reported.agentMinutes,
        leasedAgentMinutes: leased,
        billedAgentMinutes: tenant.billedAgentMinutes,
        apiCalls: reported.apiCalls,
      },
      new Date(now),
    ),
  };
}

/** The tenant's own month so far: usage against quota, metered cost against budget, the projection. */
export function tenantUsageViewRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.get('/v1/usage', async (request) => tenantStanding(ctx, request.tenant!));
}

/** The same figures for an operator, about any tenant. */
export function operatorUsageViewRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.get<{ Params: { id: string } }>('/v1/tenants/:id/usage', async (request) => {
    const id = parseTenantId(request.params.id);
    const tenant = await ctx.tenants.get(id);
    if (tenant === null) throw new HttpError(404, `tenant '${id}' does not exist`);
    return tenantStanding(ctx, tenant);
  });
}

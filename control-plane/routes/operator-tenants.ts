import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { clusterDeps } from '../../tenants/kubernetes/cluster.ts';
import {
  changeTier,
  createTenant,
  DEFAULT_MANIFESTS_DIR,
  getTenant,
  listTenants,
  type ProvisionerDeps,
} from '../../tenants/provisioner.ts';
import { parseTenantId } from '../../tenants/tenant-id.ts';
import { actorOf } from '../auth-hooks.ts';
import type { ControlPlaneContext } from '../context.ts';
import { HttpError, parseInput } from '../errors.ts';

const createBody = z.strictObject({
  id: z.string(),
  tier: z.string(),
  /** Report the plan and change nothing. */
  dryRun: z.boolean().default(false),
});

const tierBody = z.strictObject({
  tier: z.string(),
  reason: z.string().trim().min(1).max(500).optional(),
  dryRun: z.boolean().default(false),
});

export function provisionerDeps(ctx: ControlPlaneContext): ProvisionerDeps {
  return {
    pool: ctx.pool,
    cells: ctx.cells,
    env: ctx.environment,
    aws: { enabled: ctx.config.AWS_PROVISIONING },
    logger: ctx.logger,
    ...clusterDeps(ctx.config.KUBE_API, ctx.config.MANIFESTS_DIR, DEFAULT_MANIFESTS_DIR),
  };
}

/** Create, list, show and re-tier tenants through the provisioner (the tenancy engine). */
export function operatorTenantRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.post('/v1/tenants', async (request, reply) => {
    const body = parseInput(createBody, request.body, 'body');
    const result = await createTenant(provisionerDeps(ctx), {
      id: body.id,
      tier: body.tier,
      actor: actorOf(request),
      dryRun: body.dryRun,
    });
    // 201 when this call created the tenant (its key is shown only now); 200 for a re-run or a plan.
    return reply.code(result.apiKey === undefined ? 200 : 201).send(result);
  });

  app.get('/v1/tenants', async () => ({ tenants: await listTenants(ctx.pool) }));

  app.get<{ Params: { id: string } }>('/v1/tenants/:id', async (request) => {
    const id = parseTenantId(request.params.id);
    const tenant = await getTenant(ctx.pool, id);
    if (tenant === null) throw new HttpError(404, `tenant '${id}' does not exist`);
    return { tenant };
  });

  app.put<{ Params: { id: string } }>('/v1/tenants/:id/tier', async (request) => {
    const body = parseInput(tierBody, request.body, 'body');
    const id = request.params.id;
    const result = await changeTier(provisionerDeps(ctx), {
      id,
      tier: body.tier,
      actor: actorOf(request),
      dryRun: body.dryRun,
      ...(body.reason === undefined ? {} : { reason: body.reason }),
    });
    await ctx.invalidation.tenantChanged(id);
    return result;
  });
}

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { clusterDeps } from '../../tenants/kubernetes/cluster.ts';
import { DEFAULT_MANIFESTS_DIR } from '../../tenants/provisioner.ts';
import { resumeTenant, type SuspensionOptions, suspendTenant } from '../../tenants/suspension.ts';
import { actorOf } from '../auth-hooks.ts';
import type { ControlPlaneContext } from '../context.ts';
import { parseInput } from '../errors.ts';

const statusBody = z.strictObject({
  reason: z.string().trim().min(1, 'give a reason; it goes into the audit trail').max(500),
  /** Report what would change and change nothing. */
  dryRun: z.boolean().default(false),
});

type Transition = typeof suspendTenant;

/** Suspend and resume through the tenancy engine; the tenant's cached status is dropped at once. */
export function operatorStatusRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const route = (action: 'suspend' | 'resume', transition: Transition) =>
    app.post<{ Params: { id: string } }>(`/v1/tenants/:id/${action}`, async (request) => {
      const body = parseInput(statusBody, request.body ?? {}, 'body');
      const options: SuspensionOptions = {
        actor: actorOf(request),
        reason: body.reason,
        dryRun: body.dryRun,
      };
      const result = await transition(
        {
          pool: ctx.pool,
          cells: ctx.cells,
          env: ctx.environment,
          // The same directory the provisioner writes, so suspension rewrites the tenant's own manifests.
          ...clusterDeps(ctx.config.KUBE_API, ctx.config.MANIFESTS_DIR, DEFAULT_MANIFESTS_DIR),
        },
        request.params.id,
        options,
      );
      await ctx.invalidation.tenantChanged(request.params.id);
      return result;
    });
  route('suspend', suspendTenant);
  route('resume', resumeTenant);
}

import type { FastifyInstance } from 'fastify';
import { issueApiKey, revokeApiKey, rotateApiKey } from '../../tenants/api-keys.ts';
import { recordAudit } from '../../tenants/audit.ts';
import { inTransaction } from '../../tenants/lifecycle/session.ts';
import { actorOf } from '../auth-hooks.ts';
import type { ControlPlaneContext } from '../context.ts';
import { HttpError } from '../errors.ts';

type KeyParams = { Params: { id: string; prefix: string } };

/** Issue, rotate and revoke a tenant's API keys; each is audited in the same transaction. */
export function operatorKeyRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.post<{ Params: { id: string } }>('/v1/tenants/:id/api-keys', async (request, reply) => {
    const tenantId = request.params.id;
    const issued = await inTransaction(ctx.pool, async (client) => {
      const key = await issueApiKey(client, tenantId);
      await recordAudit(client, {
        tenantId,
        actor: actorOf(request),
        action: 'api-key.issued',
        evidence: { prefix: key.prefix },
      });
      return key;
    });
    return reply.code(201).send(issued);
  });

  app.post<KeyParams>('/v1/tenants/:id/api-keys/:prefix/rotate', async (request) => {
    const { id: tenantId, prefix } = request.params;
    const issued = await inTransaction(ctx.pool, async (client) => {
      const key = await rotateApiKey(client, tenantId, prefix);
      await recordAudit(client, {
        tenantId,
        actor: actorOf(request),
        action: 'api-key.rotated',
        evidence: { revokedPrefix: prefix, prefix: key.prefix },
      });
      return key;
    });
    ctx.keys.invalidatePrefix(prefix);
    return issued;
  });

  app.delete<KeyParams>('/v1/tenants/:id/api-keys/:prefix', async (request, reply) => {
    const { id: tenantId, prefix } = request.params;
    const revoked = await inTransaction(ctx.pool, async (client) => {
      if (!(await revokeApiKey(client, tenantId, prefix))) return false;
      await recordAudit(client, {
        tenantId,
        actor: actorOf(request),
        action: 'api-key.revoked',
        evidence: { prefix },
      });
      return true;
    });
    if (!revoked) throw new HttpError(404, `tenant '${tenantId}' has no active API key '${prefix}'`);
    ctx.keys.invalidatePrefix(prefix);
    return reply.code(204).send();
  });
}

import type { FastifyInstance } from 'fastify';
import type { ControlPlaneContext } from '../context.ts';
import { countRateLimitHits, RateLimitHits } from '../portal/rate-limit-hits.ts';
import { portalRoutes } from '../portal/routes.ts';
import { consoleRoutes } from './routes.ts';
import { SessionStore } from './sessions.ts';

/** Mounts the operator console (/console/) and the customer portal (/portal/) on the server. */
export async function registerWebUi(app: FastifyInstance, ctx: ControlPlaneContext): Promise<void> {
  const prefix = `${ctx.config.REDIS_KEY_PREFIX}web:`;
  const sessions = new SessionStore(ctx.redis, prefix);
  const hits = new RateLimitHits(ctx.redis, prefix);
  app.addHook('onResponse', countRateLimitHits(hits, ctx.keys));
  await consoleRoutes(app, ctx, sessions);
  await portalRoutes(app, ctx, sessions, hits);
}

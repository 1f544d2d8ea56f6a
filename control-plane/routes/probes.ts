import type { FastifyInstance } from 'fastify';
import type { ControlPlaneContext } from '../context.ts';

const PROBE_TIMEOUT_MS = 1_000;

async function check(probe: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
          PROBE_TIMEOUT_MS,
        );
      }),
    ]);
    return 'ok';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

// kubelet and Prometheus address a pod by its IP, so these answer whatever the Host header says.
const anyHost = { config: { anyHost: true } };

/** Liveness, readiness (PostgreSQL and the hot store reachable) and Prometheus metrics. */
export function probeRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  app.get('/healthz', anyHost, async () => ({ status: 'ok' }));

  app.get('/readyz', anyHost, async (_request, reply) => {
    const [postgres, store] = await Promise.all([
      check(() => ctx.pool.query('SELECT 1')),
      check(() => ctx.store.ping()),
    ]);
    const checks = { postgres, [ctx.store.kind]: store };
    if (postgres === 'ok' && store === 'ok') return { status: 'ready', checks };
    return reply.code(503).send({ error: 'not ready', checks });
  });

  app.get('/metrics', anyHost, async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}

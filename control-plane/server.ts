import * as Sentry from '@sentry/node';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { ApiKeyNotFoundError } from '../tenants/api-keys.ts';
import { AuditTextError } from '../tenants/audit.ts';
import { TenantNotFoundError } from '../tenants/errors.ts';
import { KubeApiError } from '../tenants/kubernetes/config.ts';
import { ReadinessError, TenantStateError } from '../tenants/provisioner.ts';
import { TenantIdError } from '../tenants/tenant-id.ts';
import { TierError } from '../tenants/tiers.ts';
import { operatorAuthHook, tenantAuthHook } from './auth-hooks.ts';
import { CacheInvalidation } from './cache-invalidation.ts';
import { registerWebUi } from './console/index.ts';
import type { ControlPlaneContext, ControlPlaneDeps } from './context.ts';
import {
  HttpError,
  isCatalogUnreachable,
  STORE_RETRY_AFTER_SECONDS,
  StoreUnavailableError,
} from './errors.ts';
import { hostHook, hostRulesOf, operatorHostHook } from './host-tenancy.ts';
import { type HotStore, MemoryHotStore } from './hot-store.ts';
import { LeaseMeter } from './lease-meter.ts';
import { type LeaseStore, MemoryLeaseStore, RedisLeaseStore } from './lease-store.ts';
import { LifecycleListener } from './lifecycle-listener.ts';
import { createMetrics } from './metrics.ts';
import { createOperatorVerifier } from './operator-auth.ts';
import { OutageLog } from './outage-log.ts';
import { AuthFailureLimiter, TenantRateLimiter } from './rate-limit.ts';
import { RedisHotStore } from './redis-store.ts';
import { clientErrorHandler, requireUtf8, validatePathParams } from './request-guards.ts';
import { admissionRoutes } from './routes/admission.ts';
import { operatorKeyRoutes } from './routes/operator-keys.ts';
import { operatorStatusRoutes } from './routes/operator-status.ts';
import { operatorTenantRoutes } from './routes/operator-tenants.ts';
import { probeRoutes } from './routes/probes.ts';
import { tenantSelfRoutes } from './routes/tenant-self.ts';
import { operatorUsageViewRoutes, tenantUsageViewRoutes } from './routes/usage-view.ts';
import { ApiKeyCache, billingMonth, TenantStateCache } from './tenant-cache.ts';
import { UsageBatcher } from './usage-batcher.ts';

export type { ControlPlaneDeps } from './context.ts';

/** Maps an error to a status and a message safe for the client; anything unexpected is a bare 500. */
function clientError(error: FastifyError | Error): { status: number; message: string } | null {
  if (error instanceof HttpError) return { status: error.statusCode, message: error.message };
  if (error instanceof TenantNotFoundError || error instanceof ApiKeyNotFoundError) {
    return { status: 404, message: error.message };
  }
  if (error instanceof TierError || error instanceof TenantIdError || error instanceof AuditTextError) {
    return { status: 400, message: error.message };
  }
  if (error instanceof TenantStateError) return { status: 409, message: error.message };
  // The tenant stays `provisioning` and a re-run retries.
  if (error instanceof ReadinessError || error instanceof KubeApiError) {
    return { status: 503, message: error.message };
  }
  const status = (error as FastifyError).statusCode;
  // Fastify's own client errors: malformed JSON (400), body too large (413), media type (415).
  if (status !== undefined && status >= 400 && status < 500) return { status, message: error.message };
  return null;
}

/** A store outage behind an error, whoever threw it: the hot store, a cache load or an operator route's query. */
function storeOutage(error: unknown): StoreUnavailableError | null {
  if (error instanceof StoreUnavailableError) return error;
  if (isCatalogUnreachable(error)) return new StoreUnavailableError('postgres', error);
  return null;
}

/** Fastify's trustProxy: a hop count becomes "the nearest N hops", which its types take as a function. */
function trustProxyOption(trust: false | number | string[]) {
  if (typeof trust === 'number') return (_address: string, hop: number) => hop < trust;
  return trust;
}

/**
 * Builds the control-plane HTTP service. Closing the app flushes buffered usage; the caller closes
 * the pool and the Redis client it passed in.
 */
export async function buildServer(deps: ControlPlaneDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const backend =
    deps.redis === null ? { redis: null } : { redis: deps.redis, keyPrefix: config.REDIS_KEY_PREFIX };
  const storeOptions = { idempotencyTtlSeconds: config.IDEMPOTENCY_TTL_SECONDS };
  const store: HotStore =
    deps.redis === null
      ? new MemoryHotStore(storeOptions)
      : new RedisHotStore(deps.redis, { ...storeOptions, keyPrefix: config.REDIS_KEY_PREFIX });
  const leaseMeter = new LeaseMeter(deps.pool, {
    flushMs: config.LEASE_METER_FLUSH_MS,
    logger: deps.logger,
    // Each replica sweeps once per heartbeat interval; sweeps from several replicas count once.
    sweep: () => leases.sweepAll(billingMonth((deps.clock ?? Date.now)())),
    sweepMs: config.LEASE_HEARTBEAT_MS,
  });
  const leaseOptions = {
    ttlMs: config.LEASE_HEARTBEAT_MS * config.LEASE_EXPIRY_HEARTBEATS,
    meter: leaseMeter,
    ...(deps.clock ? { clock: deps.clock } : {}),
  };
  const leases: LeaseStore =
    deps.redis === null
      ? new MemoryLeaseStore(leaseOptions)
      : new RedisLeaseStore(deps.redis, { ...leaseOptions, keyPrefix: config.REDIS_KEY_PREFIX });
  const metrics = createMetrics();
  const keys = new ApiKeyCache(deps.pool, config.KEY_CACHE_TTL_MS, config.CATALOG_OUTAGE_GRACE_MS);
  const tenants = new TenantStateCache(
    deps.pool,
    store,
    config.TENANT_CACHE_TTL_MS,
    config.CATALOG_OUTAGE_GRACE_MS,
  );
  const invalidation = new CacheInvalidation(
    deps.redis,
    config.REDIS_KEY_PREFIX,
    { keys, tenants },
    deps.logger,
  );
  await invalidation.start();
  const lifecycle = new LifecycleListener(deps.pool, tenants, deps.logger);
  lifecycle.start();
  const ctx: ControlPlaneContext = {
    ...deps,
    store,
    leases,
    leaseMeter,
    metrics,
    keys,
    tenants,
    invalidation,
    outages: new OutageLog(deps.logger, config.OUTAGE_LOG_INTERVAL_MS),
    limiter: new TenantRateLimiter(backend),
    authFailures: new AuthFailureLimiter(backend, config.AUTH_FAILURES_PER_MINUTE, config.AUTH_BLOCK_SECONDS),
    usage: new UsageBatcher(deps.pool, {
      maxReports: config.USAGE_FLUSH_MAX_REPORTS,
      logger: deps.logger,
      metrics,
    }),
    verifyOperator: await createOperatorVerifier(config),
    hostRules: hostRulesOf(config),
  };

  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request lines are logged at debug level by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    clientErrorHandler,
    // A request without Host reaches the host hook, which answers it in the `{ error }` shape (probes excepted).
    http: { requireHostHeader: false },
    // The router's own refusals (malformed percent-encoding, overlong parameter) in the `{ error }` shape.
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).code(error.statusCode ?? 400).send({ error: error.message });
    },
  });
  // JSON only: any other body is a 415.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('tenant', null);
  app.decorateRequest('operator', null);
  app.decorateRequest('hostTenancy', null);
  app.decorate('flushUsage', async () => {
    await ctx.usage.flush();
    await ctx.leaseMeter.flush();
  });

  // Labelled children are looked up once per method, route and status, not hashed on every request.
  const perRoute = new Map<string, { count: () => void; observe: (seconds: number) => void }>();
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const key = `${request.method} ${route} ${reply.statusCode}`;
    let series = perRoute.get(key);
    if (series === undefined) {
      const labels = { method: request.method, route, status: String(reply.statusCode) };
      const counter = metrics.httpRequests.labels(labels);
      const histogram = metrics.httpDuration.labels(labels);
      series = { count: () => counter.inc(), observe: (seconds) => histogram.observe(seconds) };
      perRoute.set(key, series);
    }
    series.count();
    series.observe(reply.elapsedTime / 1000);
    request.log.debug({ route, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
    done();
  });
  app.addHook('onRequest', hostHook(ctx.hostRules));
  app.addHook('onRequest', validatePathParams);
  app.addHook('onRequest', requireUtf8);
  app.addHook('onClose', async () => {
    await ctx.usage.close();
    await ctx.leaseMeter.close();
    await ctx.invalidation.close();
    await lifecycle.close();
    ctx.outages.close();
  });

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    const outage = storeOutage(error);
    if (outage !== null) {
      ctx.outages.refused(outage.store, outage.cause);
      return reply
        .code(503)
        .header('Retry-After', STORE_RETRY_AFTER_SECONDS)
        .send({ error: `${outage.message}; retry later` });
    }
    const known = clientError(error);
    if (known !== null) {
      if (error instanceof HttpError) reply.headers(error.headers);
      return reply.code(known.status).send({ error: known.message });
    }
    request.log.error({ err: error, route: request.routeOptions.url }, 'unhandled error');
    if (config.SENTRY_DSN !== undefined) Sentry.captureException(error);
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  probeRoutes(app, ctx);
  await app.register(async (scope) => {
    scope.addHook('onRequest', tenantAuthHook(ctx));
    tenantSelfRoutes(scope, ctx);
    admissionRoutes(scope, ctx);
    tenantUsageViewRoutes(scope, ctx);
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', operatorHostHook(ctx.hostRules));
    scope.addHook('onRequest', operatorAuthHook(ctx));
    operatorTenantRoutes(scope, ctx);
    operatorKeyRoutes(scope, ctx);
    operatorStatusRoutes(scope, ctx);
    operatorUsageViewRoutes(scope, ctx);
  });
  await registerWebUi(app, ctx);
  return app;
}

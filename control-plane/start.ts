import * as Sentry from '@sentry/node';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { createLogger } from '../monitors/logger.ts';
import { openDatabase } from '../tenants/embedded-database.ts';
import type { ControlPlaneConfig } from './config.ts';
import { buildServer } from './server.ts';

/** A listening control plane and how to stop it. */
export interface RunningControlPlane {
  readonly app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly logger: Logger;
  /**
   * Graceful stop: stop accepting, drain in-flight requests, flush buffered usage, then close Redis
   * and the PostgreSQL pool.
   */
  close(): Promise<void>;
}

async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    // Fail fast while disconnected: the rate limiter falls back to memory, /readyz reports it.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // Commands issued in the same tick share one write: fewer syscalls under load.
    enableAutoPipelining: true,
  });
  redis.on('error', (error) => logger.warn({ err: error }, 'redis error'));
  await redis.connect();
  return redis;
}

/** Opens PostgreSQL (or the embedded one) and Redis, builds the service and listens on HOST:PORT. */
export async function startControlPlane(config: ControlPlaneConfig): Promise<RunningControlPlane> {
  const logger = createLogger({
    level: config.LOG_LEVEL,
    base: { service: 'control-plane', env: config.ENV },
  });
  if (config.SENTRY_DSN !== undefined) Sentry.init({ dsn: config.SENTRY_DSN, environment: config.ENV });
  const environment = loadEnvironmentConfig(config.ENV);
  const db = await openDatabase({
    ...(config.DATABASE_URL === undefined ? {} : { url: config.DATABASE_URL }),
    max: config.DB_POOL_MAX,
    env: environment,
  });
  if (db.embedded) logger.warn({ url: db.url }, 'DATABASE_URL unset: using the embedded PostgreSQL');
  let redis: Redis | null = null;
  try {
    if (config.REDIS_URL === undefined) {
      logger.warn(
        'REDIS_URL unset: rate limits, idempotency keys and task leases are in memory; run one instance only',
      );
    } else {
      redis = await connectRedis(config.REDIS_URL, logger);
    }
    const app = await buildServer({ config, pool: db.pool, cells: db.cells, redis, environment, logger });
    const address = await app.listen({ port: config.PORT, host: config.HOST });
    logger.info({ address, store: redis === null ? 'memory' : 'redis' }, 'control plane listening');
    const url = address.replace('0.0.0.0', '127.0.0.1');
    return {
      app,
      url,
      logger,
      async close() {
        await app.close();
        await redis?.quit();
        await db.close();
        if (config.SENTRY_DSN !== undefined) await Sentry.close(2_000);
      },
    };
  } catch (error) {
    redis?.disconnect();
    await db.close();
    throw error;
  }
}

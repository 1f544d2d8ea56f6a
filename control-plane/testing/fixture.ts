import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import type pg from 'pg';
import pino from 'pino';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { issueApiKey } from '../../tenants/api-keys.ts';
import type { CellDirectory } from '../../tenants/cells.ts';
import {
  createCatalogDatabase,
  dropRoles,
  type TestDatabase,
  uniqueTenantId,
} from '../../tenants/testing/pg.ts';
import type { TierName } from '../../tenants/tiers.ts';
import { type ControlPlaneConfig, loadControlPlaneConfig } from '../config.ts';
import { buildServer } from '../server.ts';

export const TEST_JWT_SECRET = 'test-secret-for-control-plane-tests-only-0123456789';
export const REDIS_TEST_URL = 'redis://127.0.0.1:6379';

/** A catalog database and a Redis key prefix of one test file, plus helpers to build servers on them. */
export interface ControlPlaneFixture {
  readonly db: TestDatabase;
  readonly pool: pg.Pool;
  readonly cells: CellDirectory;
  readonly redis: Redis;
  readonly keyPrefix: string;
  /** Builds a server on the fixture's database and Redis; env overrides config variables. */
  server(
    env?: Record<string, string>,
    options?: { redis?: Redis | null; clock?: () => number },
  ): Promise<FastifyInstance>;
  /** Inserts a tenant row (bypassing provisioning) and issues it a key. */
  tenant(tier: TierName, status?: string): Promise<{ id: string; key: string; prefix: string }>;
  /** A unique tenant id whose PostgreSQL role (if provisioning creates one) is dropped on close. */
  provisionedId(stem: string): string;
  /** Signs an operator token. */
  token(role: string, options?: { expiresIn?: string; secret?: string }): Promise<string>;
  close(): Promise<void>;
}

export function testConfig(keyPrefix: string, env: Record<string, string> = {}): ControlPlaneConfig {
  return loadControlPlaneConfig({ JWT_SECRET: TEST_JWT_SECRET, REDIS_KEY_PREFIX: keyPrefix, ...env });
}

export async function createFixture(label: string): Promise<ControlPlaneFixture> {
  const { db, pool, cells } = await createCatalogDatabase(label, 5);
  const redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const keyPrefix = `cptest:${label}:${randomBytes(4).toString('hex')}:`;
  const apps: FastifyInstance[] = [];
  const roles: string[] = [];
  return {
    db,
    pool,
    cells,
    redis,
    keyPrefix,
    async server(env = {}, options = {}) {
      const app = await buildServer({
        config: testConfig(keyPrefix, env),
        pool,
        cells,
        redis: options.redis === undefined ? redis : options.redis,
        environment: loadEnvironmentConfig('dev'),
        logger: pino({ level: 'silent' }),
        ...(options.clock ? { clock: options.clock } : {}),
      });
      apps.push(app);
      return app;
    },
    async tenant(tier, status = 'active') {
      const id = uniqueTenantId('cp');
      await pool.query(
        `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ($1, $2, $3, 'cell-1')`,
        [id, tier, status],
      );
      return { id, ...(await issueApiKey(pool, id)) };
    },
    provisionedId(stem) {
      const id = uniqueTenantId(stem);
      roles.push(id);
      return id;
    },
    token(role, options = {}) {
      return new SignJWT({ role })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(`test-${role}`)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '5m')
        .sign(new TextEncoder().encode(options.secret ?? TEST_JWT_SECRET));
    },
    async close() {
      for (const app of apps) await app.close();
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      await pool.end();
      await db.drop();
      // Roles are server-wide; they go once the database that held their objects is gone.
      await dropRoles(roles);
    },
  };
}

/** Authorization header for a key or token. */
export function bearer(credential: string): { authorization: string } {
  return { authorization: `Bearer ${credential}` };
}

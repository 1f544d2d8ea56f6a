import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { EnvironmentConfig } from '../config/environments.ts';
import type { CellDirectory } from '../tenants/cells.ts';
import type { CacheInvalidation } from './cache-invalidation.ts';
import type { ControlPlaneConfig } from './config.ts';
import type { HostRules, RequestHost } from './host-tenancy.ts';
import type { HotStore } from './hot-store.ts';
import type { LeaseMeter } from './lease-meter.ts';
import type { LeaseStore } from './lease-store.ts';
import type { Metrics } from './metrics.ts';
import type { Operator, OperatorVerifier } from './operator-auth.ts';
import type { OutageLog } from './outage-log.ts';
import type { AuthFailureLimiter, TenantRateLimiter } from './rate-limit.ts';
import type { ApiKeyCache, TenantState, TenantStateCache } from './tenant-cache.ts';
import type { UsageBatcher } from './usage-batcher.ts';

/** What buildServer needs from the outside; the caller owns and closes the pool and the Redis client. */
export interface ControlPlaneDeps {
  readonly config: ControlPlaneConfig;
  /** The catalog. */
  readonly pool: pg.Pool;
  /** The cells, where provisioning and suspension change tenant roles and schemas. */
  readonly cells: CellDirectory;
  /** Redis client, already connected. @default - null: in-memory limits and slots (one process only) */
  readonly redis: Redis | null;
  /** Platform environment the provisioner and suspension modules work in. */
  readonly environment: EnvironmentConfig;
  readonly logger: Logger;
  /** ms since the epoch, for leases. @default Date.now */
  readonly clock?: () => number;
}

/** Everything the route files share, built once per server. */
export interface ControlPlaneContext extends ControlPlaneDeps {
  readonly store: HotStore;
  readonly leases: LeaseStore;
  /** Writes leased agent-minutes to the catalog. */
  readonly leaseMeter: LeaseMeter;
  readonly keys: ApiKeyCache;
  readonly tenants: TenantStateCache;
  readonly limiter: TenantRateLimiter;
  readonly authFailures: AuthFailureLimiter;
  readonly usage: UsageBatcher;
  readonly metrics: Metrics;
  readonly verifyOperator: OperatorVerifier;
  /** Drops revoked keys and changed tenants from the caches of every replica. */
  readonly invalidation: CacheInvalidation;
  readonly outages: OutageLog;
  /** Which Host names a tenant, which serves operators (PUBLIC_DOMAIN). */
  readonly hostRules: HostRules;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the tenant auth hook on /v1/me, /v1/usage and /v1/admission routes. */
    tenant: TenantState | null;
    /** Set by the operator auth hook on /v1/tenants routes. */
    operator: Operator | null;
    /** What the Host header says (host-tenancy.ts); set by the first onRequest hook, null before it. */
    hostTenancy: RequestHost | null;
  }
  interface FastifyContextConfig {
    /** Served on any Host, or none: probes and metrics, which kubelet and Prometheus reach by pod IP. */
    anyHost?: boolean;
  }
  interface FastifyInstance {
    /** Writes buffered usage reports and leased minutes to PostgreSQL now. */
    flushUsage(): Promise<void>;
  }
}

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { type EnvironmentConfig, loadEnvironmentConfig } from '../../config/environments.ts';
import {
  cacheReplicationGroupId,
  DATABASE_TOPOLOGY,
  DRILL_ENV_TAG,
  DRILL_TAG,
  databaseInstanceId,
  drillResourcePrefix,
  resourcePrefix,
} from '../../config/names.ts';
import { DATABASE_TOPOLOGIES, type DatabaseTopology } from './constants.ts';
import { DrillError } from './errors.ts';

export { DATABASE_TOPOLOGIES, type DatabaseTopology, DRILL_NAMES, type DrillName } from './constants.ts';

/** The drill tags and identifier prefix live in config/names.ts, which the drills' IAM policy reads too. */
export { DRILL_ENV_TAG, DRILL_TAG, drillResourcePrefix };

/** The topology the data stack deploys; `--topology` overrides it. */
export const DEPLOYED_TOPOLOGY: DatabaseTopology = DATABASE_TOPOLOGY;

/** The data stack deploys no DB cluster today; this is the name a multi-az-cluster topology would use. */
export function defaultDbClusterId(config: EnvironmentConfig): string {
  return `${resourcePrefix(config)}-db-cluster`;
}

/** Identifier of the instance (and snapshot) one run creates: letters, digits, single hyphens, <= 63 chars. */
export function drillResourceId(env: string, runId: string, kind: 'restore' | 'pitr'): string {
  return `${drillResourcePrefix(env)}${kind}-${runId}`;
}

/** A run id such as `r20261124t0250-ab12`: sortable, and valid inside an RDS identifier. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', 't');
  return `r${stamp}-${randomBytes(2).toString('hex')}`;
}

const RUN_ID = /^r\d{8}t\d{4}-[0-9a-f]{4}$/;

const identifier = z
  .string()
  .regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'must be an RDS/ElastiCache identifier (lowercase, single hyphens)')
  .max(63);

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\/.+/, 'must be a postgresql:// URL')
  .optional();
const redisUrl = z
  .string()
  .regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL')
  .optional();

/** Raw CLI options as commander gives them (strings). */
export const drillOptionsSchema = z.object({
  env: z.string(),
  confirm: z.string().optional(),
  runId: z.string().regex(RUN_ID, 'must look like r20261124t0250-ab12').optional(),
  topology: z.enum(DATABASE_TOPOLOGIES).optional(),
  dbInstance: identifier.optional(),
  dbCluster: identifier.optional(),
  cacheReplicationGroup: identifier.optional(),
  databaseUrl: postgresUrl,
  verifyDatabaseUrl: postgresUrl,
  redisUrl,
  probeInterval: z.coerce.number().int().min(50).max(60_000).default(1000),
  probeTimeout: z.coerce.number().int().min(50).max(60_000).default(2000),
  observe: z.coerce.number().min(0).max(3600).default(30),
  pollInterval: z.coerce.number().min(0.05).max(300).default(15),
  timeout: z.coerce
    .number()
    .positive()
    .max(6 * 3600)
    .optional(),
  rowCountTolerance: z.coerce.number().min(0).max(100).default(0),
  json: z.boolean().default(false),
  report: z.string().min(1).optional(),
  junit: z.string().min(1).optional(),
});
export type RawDrillOptions = z.input<typeof drillOptionsSchema>;

/** Validated options for one drill run. */
export interface DrillOptions {
  /** The environment config; targets come from `config.drills`. */
  readonly config: EnvironmentConfig;
  readonly runId: string;
  readonly topology: DatabaseTopology;
  readonly dbInstance: string;
  readonly dbCluster: string;
  readonly cacheReplicationGroup: string;
  /** Source database (the prober writes here; verification reads inventories here). */
  readonly databaseUrl?: string;
  /** Restored database; @default - the source URL with host and port replaced by the restored endpoint. */
  readonly verifyDatabaseUrl?: string;
  readonly redisUrl?: string;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  /** Seconds the prober keeps running after the control plane reports the resource available again. */
  readonly observeSeconds: number;
  readonly pollIntervalMs: number;
  /** Overall limit for waits; @default - twice the drill's RTO target. */
  readonly timeoutSeconds?: number;
  /** Allowed row-count difference in percent (PITR and busy sources); @default - 0, exact. */
  readonly rowCountTolerancePercent: number;
}

/** Refuses prod unless `--confirm prod` is given: a drill really fails over and restores. */
export function assertEnvironmentAllowed(env: string, confirm: string | undefined): void {
  if (env === 'prod' && confirm !== 'prod') {
    throw new DrillError(`refusing to run against 'prod' without '--confirm prod' (got '${confirm ?? ''}')`);
  }
  if (confirm !== undefined && confirm !== env) {
    throw new DrillError(`'--confirm' (${confirm}) does not match '--env' (${env})`);
  }
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const flag = issue.path.join('.').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return `'--${flag}' ${issue.message}`;
}

/** Parses CLI options (falling back to DATABASE_URL, REDIS_URL, DR_DRILL_VERIFY_DATABASE_URL) into DrillOptions. */
export function resolveDrillOptions(
  raw: RawDrillOptions,
  environ: NodeJS.ProcessEnv = process.env,
): DrillOptions & { readonly json: boolean; readonly report?: string; readonly junit?: string } {
  const parsed = drillOptionsSchema.safeParse({
    ...raw,
    databaseUrl: raw.databaseUrl ?? environ.DATABASE_URL,
    verifyDatabaseUrl: raw.verifyDatabaseUrl ?? environ.DR_DRILL_VERIFY_DATABASE_URL,
    redisUrl: raw.redisUrl ?? environ.REDIS_URL,
  });
  if (!parsed.success) {
    const bad = parsed.error.issues[0]!.path[0];
    const value = bad === undefined ? undefined : (raw as Record<string, unknown>)[String(bad)];
    throw new DrillError(`${firstIssue(parsed.error)} (got ${JSON.stringify(value ?? null)})`);
  }
  const o = parsed.data;
  assertEnvironmentAllowed(o.env, o.confirm);
  let config: EnvironmentConfig;
  try {
    config = loadEnvironmentConfig(o.env);
  } catch (error) {
    throw new DrillError((error as Error).message);
  }
  return {
    config,
    runId: o.runId ?? newRunId(),
    topology: o.topology ?? DEPLOYED_TOPOLOGY,
    dbInstance: o.dbInstance ?? databaseInstanceId(config),
    dbCluster: o.dbCluster ?? defaultDbClusterId(config),
    cacheReplicationGroup: o.cacheReplicationGroup ?? cacheReplicationGroupId(config),
    databaseUrl: o.databaseUrl,
    verifyDatabaseUrl: o.verifyDatabaseUrl,
    redisUrl: o.redisUrl,
    probeIntervalMs: o.probeInterval,
    probeTimeoutMs: o.probeTimeout,
    observeSeconds: o.observe,
    pollIntervalMs: o.pollInterval * 1000,
    timeoutSeconds: o.timeout,
    rowCountTolerancePercent: o.rowCountTolerance,
    json: o.json,
    report: o.report,
    junit: o.junit,
  };
}

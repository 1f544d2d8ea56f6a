import type { EnvironmentConfig } from './environments.ts';

/** Tag keys every taggable platform resource carries (env, app, cost-center). */
export const REQUIRED_TAGS = ['env', 'app', 'cost-center'] as const;

/** The `app` tag value and the prefix of every physical name. */
export const APP_NAME = 'agent-platform';

/** Secret of the BetterStack heartbeat URLs in the platform namespace, one key per CronJob (`monitors secret`). */
export const HEARTBEATS_SECRET = 'platform-heartbeats';

/** Tag values for one environment, applied to the whole app in createPlatform. */
export function platformTags(config: EnvironmentConfig): Record<(typeof REQUIRED_TAGS)[number], string> {
  return { env: config.name, app: APP_NAME, 'cost-center': config.costCenter };
}

/** Prefix of physical names in one environment, e.g. `agent-platform-prod`. */
export function resourcePrefix(config: EnvironmentConfig): string {
  return `${APP_NAME}-${config.name}`;
}

/** Secrets Manager names; workload policies are scoped to these, so they are fixed rather than generated. */
export function secretNames(config: EnvironmentConfig) {
  const base = `${APP_NAME}/${config.name}`;
  return {
    /** Prefix of every secret the platform owns in this environment. */
    prefix: `${base}/`,
    databaseMaster: `${base}/database/master`,
    cacheAuth: `${base}/cache/auth`,
    /** Tenant database secrets are `<tenantsPrefix><id>/database` (see COMMON.md). */
    tenantsPrefix: `${base}/tenants/`,
    /** BetterStack Uptime API token of `npm run monitors` when BETTERSTACK_API_TOKEN is unset. */
    betterStackApiToken: `${base}/betterstack/api-token`,
  };
}

/** The RDS instance identifier; alarms and drills address the instance by it. */
export function databaseInstanceId(config: EnvironmentConfig): string {
  return `${resourcePrefix(config)}-db`;
}

/** The ElastiCache replication group id (at most 40 characters). */
export function cacheReplicationGroupId(config: EnvironmentConfig): string {
  return `${resourcePrefix(config)}-cache`;
}

/** Member cluster ids ElastiCache gives the nodes of a replication group: `<group>-001`, `-002`, ... */
export function cacheNodeIds(config: EnvironmentConfig): string[] {
  const group = cacheReplicationGroupId(config);
  return Array.from(
    { length: config.cache.nodeCount },
    (_, i) => `${group}-${String(i + 1).padStart(3, '0')}`,
  );
}

/** The EKS cluster name. */
export function clusterName(config: EnvironmentConfig): string {
  return resourcePrefix(config);
}

/** Kubernetes service accounts that get AWS permissions through EKS Pod Identity. */
export const WORKLOAD_IDENTITIES = {
  controlPlane: { namespace: 'platform', serviceAccount: 'control-plane' },
  costGuard: { namespace: 'platform', serviceAccount: 'cost-guard' },
  drills: { namespace: 'platform', serviceAccount: 'dr-drill' },
} as const;

/** Tag key on every resource a DR drill creates; the value is the run id. Cleanup only touches tagged resources. */
export const DRILL_TAG = 'dr-drill';

/** Tag the DR drills put on every copy they create, valued with the environment; their IAM role keys on it. */
export const DRILL_ENV_TAG = 'dr-drill-env';

/** Every drill resource identifier starts with this, a second guard next to the tags. */
export function drillResourcePrefix(envName: string): string {
  return `${APP_NAME}-${envName}-drill-`;
}

/** How the database is deployed (stacks/data.ts); the drills choose their failover path by it. */
export const DATABASE_TOPOLOGY = 'multi-az-instance' as const;

/** Alias of the KMS key that encrypts the alarm topic; the cost guard's role names the key by it. */
export function alarmTopicKeyAlias(config: EnvironmentConfig): string {
  return `${resourcePrefix(config)}-alarms`;
}

/** Sender of the daily cost report; its domain is the SES identity the cost guard's role may send from. */
export function costReportSender(config: EnvironmentConfig): string {
  return `cost-report@${config.domain}`;
}

/**
 * The one IAM role every tenant namespace's service account maps to through EKS Pod Identity. Its name is
 * fixed so onboarding can associate a namespace without looking it up.
 */
export function tenantDatabaseRoleName(config: EnvironmentConfig): string {
  return `${resourcePrefix(config)}-tenant-database`;
}

/** The service account in each tenant namespace that the tenant database role is associated with. */
export const TENANT_DATABASE_SERVICE_ACCOUNT = 'tenant-database';

/** SSM parameter holding the EKS cluster security group id, read by the data and cache stacks at deploy time. */
export function clusterSecurityGroupParameterName(config: EnvironmentConfig): string {
  return `/${APP_NAME}/${config.name}/cluster/security-group-id`;
}

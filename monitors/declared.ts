import type { EnvironmentConfig } from '../config/environments.ts';
import { resourcePrefix } from '../config/names.ts';
import {
  BILLING_EXPORT_SCHEDULE,
  BILLING_RECONCILE_SCHEDULE,
  COST_GUARD_SCHEDULE,
  CRON_JOB_DEADLINES,
  type WorkloadsConfig,
} from '../config/workloads.ts';
import { longestIntervalSeconds } from './cron-period.ts';

/** The BetterStack object kinds this tool manages, by their Uptime API collection. */
export const RESOURCE_KINDS = ['monitor', 'heartbeat', 'status_page', 'status_page_resource'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];
/** Kinds that live at the top level of the API, not inside a status page. */
export type TopLevelKind = Exclude<ResourceKind, 'status_page_resource'>;
export const TOP_LEVEL_KINDS: readonly TopLevelKind[] = ['monitor', 'heartbeat', 'status_page'];

/** A managed attribute value; only these are compared and written. */
export type AttributeValue = string | number | boolean;

/** One object as declared here: its kind, the attribute that identifies it, and the attributes we own. */
export interface DeclaredResource {
  readonly kind: ResourceKind;
  /** The identifying attribute's value (pronounceable_name, name or subdomain); starts with the owner prefix. */
  readonly identity: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** Heartbeats pinged by a CronJob: the key of their URL in the `platform-heartbeats` Secret. */
  readonly secretKey?: string;
  /** Status page resources: the page's identity (subdomain) and the monitor or heartbeat it shows. */
  readonly page?: string;
  readonly target?: { readonly kind: 'monitor' | 'heartbeat'; readonly identity: string };
}

/** The attribute that names an object of each kind, and so decides ownership and matching. */
export const IDENTITY_ATTRIBUTE: Record<ResourceKind, string> = {
  monitor: 'pronounceable_name',
  heartbeat: 'name',
  status_page: 'subdomain',
  // Within its page; the plan's identity is `<page> / <public_name>`.
  status_page_resource: 'public_name',
};

/**
 * Ownership: an object belongs to this tool when its identity starts with `agent-platform-<env>` (names are
 * `agent-platform-<env>: …`, the status page subdomain is `agent-platform-<env>-status`), and every resource
 * on an owned status page is owned with it. Nothing else in the BetterStack team is read for changes, updated
 * or deleted.
 */
export function ownerPrefix(config: EnvironmentConfig): string {
  return resourcePrefix(config);
}

export function isOwned(identity: string, config: EnvironmentConfig): boolean {
  const prefix = ownerPrefix(config);
  return identity.startsWith(`${prefix}:`) || identity.startsWith(`${prefix}-`);
}

/** The uptime check of the api host: one minute keeps a 99.5% month (3.6 h of budget) well resolved. */
const UPTIME_CHECK_SECONDS = 60;
/** RDS takes its automated backup once a day; a backup that has not finished within an hour is late. */
const BACKUP_PERIOD_SECONDS = 86_400;
const BACKUP_GRACE_SECONDS = 3_600;

/** A CronJob's heartbeat: the period is the longest gap of its schedule, the grace the latest a good run pings. */
function cronHeartbeat(config: EnvironmentConfig, secretKey: string, schedule: string): DeclaredResource {
  return {
    kind: 'heartbeat',
    identity: `${ownerPrefix(config)}: ${secretKey}`,
    secretKey,
    attributes: {
      period: longestIntervalSeconds(schedule),
      grace: CRON_JOB_DEADLINES.startingDeadlineSeconds + CRON_JOB_DEADLINES.activeDeadlineSeconds,
      email: true,
      paused: false,
    },
  };
}

/** Everything BetterStack should hold for one environment, or an empty list where BetterStack is off. */
export function declaredResources(config: EnvironmentConfig, workloads: WorkloadsConfig): DeclaredResource[] {
  if (!config.observability.betterStackEnabled) return [];
  const prefix = ownerPrefix(config);
  const resources: DeclaredResource[] = [
    {
      kind: 'monitor',
      identity: `${prefix}: api /healthz`,
      attributes: {
        url: `https://api.${config.domain}/healthz`,
        monitor_type: 'status',
        check_frequency: UPTIME_CHECK_SECONDS,
        verify_ssl: true,
        email: true,
      },
    },
    cronHeartbeat(config, 'cost-guard', COST_GUARD_SCHEDULE),
    cronHeartbeat(config, 'billing-export', BILLING_EXPORT_SCHEDULE),
    cronHeartbeat(config, 'billing-reconcile', BILLING_RECONCILE_SCHEDULE),
  ];
  if (workloads.drillSchedule !== null)
    resources.push(cronHeartbeat(config, 'dr-drill', workloads.drillSchedule));
  const page = `${prefix}-status`;
  const uptime = resources[0]!;
  resources.push(
    {
      kind: 'heartbeat',
      identity: `${prefix}: database-backups`,
      attributes: {
        period: BACKUP_PERIOD_SECONDS,
        grace: BACKUP_GRACE_SECONDS,
        email: true,
        // Nothing pings it yet (RDS backups run inside AWS); paused so that it cannot page anyone falsely.
        paused: true,
      },
    },
    {
      kind: 'status_page',
      identity: page,
      attributes: {
        company_name: config.name === 'prod' ? 'Agent platform' : `Agent platform (${config.name})`,
        timezone: 'UTC',
        subscribable: config.name === 'prod',
      },
    },
    {
      kind: 'status_page_resource',
      identity: `${page} / API`,
      page,
      target: { kind: 'monitor', identity: uptime.identity },
      attributes: { public_name: 'API', resource_type: 'Monitor', widget_type: 'history' },
    },
  );
  return resources;
}

import { z } from 'zod';
import { ConfigError, type EnvironmentName } from './environments.ts';

const quantity = z
  .string()
  .regex(/^\d+(\.\d+)?(m|Mi|Gi)?$/, 'must be a Kubernetes quantity such as 250m or 512Mi');

/** Sizes of the platform's own workloads in one environment; the charts read nothing else for them. */
export const workloadsConfigSchema = z
  .object({
    controlPlane: z.object({
      /** HorizontalPodAutoscaler bounds; the PodDisruptionBudget keeps minReplicas - 1 available. */
      minReplicas: z.number().int().min(1),
      maxReplicas: z.number().int().min(1),
      /** Average CPU use, in percent of the request, that the autoscaler aims for. */
      targetCpuPercent: z.number().int().min(10).max(100),
      cpu: z.object({ request: quantity, limit: quantity }),
      memory: z.object({ request: quantity, limit: quantity }),
    }),
    /** The database limits watchdog: one small replica, mostly waiting on one query a second. */
    dbWatchdog: z.object({
      cpu: z.object({ request: quantity, limit: quantity }),
      memory: z.object({ request: quantity, limit: quantity }),
    }),
    /** The DR-drill CronJob runs only where this is set (staging). */
    drillSchedule: z
      .string()
      .regex(/^(\S+\s+){4}\S+$/, 'must be a five-field cron schedule')
      .nullable(),
  })
  .superRefine((c, ctx) => {
    if (c.controlPlane.maxReplicas < c.controlPlane.minReplicas) {
      ctx.addIssue({
        code: 'custom',
        path: ['controlPlane', 'maxReplicas'],
        message: 'must be >= minReplicas',
      });
    }
  });

export type WorkloadsConfig = z.infer<typeof workloadsConfigSchema>;

/** Cost Explorer refreshes about three times a day; four runs catch each refresh without paying for idle ones. */
export const COST_GUARD_SCHEDULE = '17 */6 * * *';

/** Hourly, past the 5-minute settle time of the hour just closed (billing/export.ts). */
export const BILLING_EXPORT_SCHEDULE = '11 * * * *';
/** Daily, once the export has sent the last hour of the previous UTC day. */
export const BILLING_RECONCILE_SCHEDULE = '41 3 * * *';

/**
 * How late a platform CronJob run may start and how long it may run. A successful run therefore pings its
 * heartbeat at most their sum after its scheduled time, which is the heartbeat's grace (monitors/declared.ts).
 */
export const CRON_JOB_DEADLINES = { startingDeadlineSeconds: 1800, activeDeadlineSeconds: 3600 } as const;

/** Share of a Node.js container's memory limit given to V8's old space; the rest is new space, code and buffers. */
export const NODE_HEAP_SHARE = 0.6;

const MIB_PER_UNIT: Record<string, number> = { Mi: 1, Gi: 1024 };

/**
 * `--max-old-space-size` (MiB) for a Node.js container with this memory limit. Without it V8 sizes its heap from
 * what it sees of the node and lets garbage pile up long before a full collection: in the 10-minute soak the
 * control plane's RSS swung between 340 and 816 MB around a live heap of 108 MB, past its 512Mi limit.
 */
export function nodeHeapLimitMb(memoryLimit: string): number {
  const match = /^(\d+(?:\.\d+)?)(Mi|Gi)$/.exec(memoryLimit);
  if (!match)
    throw new ConfigError(`memory limit '${memoryLimit}' must be in Mi or Gi to size the Node.js heap`);
  return Math.floor(Number(match[1]) * MIB_PER_UNIT[match[2]!]! * NODE_HEAP_SHARE);
}

/** The Node.js option that sets that heap ceiling, as the Deployments pass it in NODE_OPTIONS. */
export const nodeHeapOption = (memoryLimit: string) => `--max-old-space-size=${nodeHeapLimitMb(memoryLimit)}`;

const controlPlane = (minReplicas: number, maxReplicas: number) => ({
  minReplicas,
  maxReplicas,
  targetCpuPercent: 70,
  cpu: { request: '250m', limit: '1' },
  memory: { request: '256Mi', limit: '512Mi' },
});

const dbWatchdog = {
  cpu: { request: '50m', limit: '250m' },
  memory: { request: '96Mi', limit: '192Mi' },
};

export const WORKLOADS: Record<EnvironmentName, unknown> = {
  dev: { controlPlane: controlPlane(2, 3), dbWatchdog, drillSchedule: null },
  // Weekly, on a weekday morning (UTC), so that a failed drill meets people at work.
  staging: { controlPlane: controlPlane(2, 4), dbWatchdog, drillSchedule: '30 9 * * 2' },
  prod: { controlPlane: controlPlane(3, 12), dbWatchdog, drillSchedule: null },
};

/** The validated workload sizes of one environment; throws ConfigError naming the field. */
export function loadWorkloadsConfig(env: EnvironmentName): WorkloadsConfig {
  const result = workloadsConfigSchema.safeParse(WORKLOADS[env]);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(`invalid workloads of '${env}': '${issue.path.join('.')}' ${issue.message}`);
  }
  return result.data;
}

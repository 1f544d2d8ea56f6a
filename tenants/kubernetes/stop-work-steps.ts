import type { TenantStatus } from '../lifecycle/status.ts';
import type { Step } from '../lifecycle/steps.ts';
import { getTier } from '../tiers.ts';
import { JOB_PROPAGATION_POLICY, type TenantCluster, type WorkCounts } from './cluster.ts';
import { STOP_TASKS_ANNOTATION } from './names.ts';

/** What the cluster steps read from a status change: the tenant, where it goes, and the cluster. */
export interface ClusterStepContext {
  readonly deps: { readonly kube?: TenantCluster };
  readonly row: { readonly id: string; readonly tier: string };
  readonly to: TenantStatus;
}

/** Limited and suspended tenants run nothing new: zero pods and jobs. Active tenants get the tier's counts. */
function targetCounts(ctx: ClusterStepContext): WorkCounts {
  if (ctx.to !== 'active') return { pods: 0, jobs: 0 };
  const { pods, jobs } = getTier(ctx.row.tier).kubernetes;
  return { pods, jobs };
}

/**
 * The quota's pod and job counts and the stop-tasks annotation, through the Kubernetes API. The annotation
 * is written first, so a quota already at its target means both are in place (a rerun plans nothing).
 */
export const clusterQuotaStep: Step<ClusterStepContext, 'cluster'> = {
  name: 'cluster',
  async plan(ctx) {
    const kube = ctx.deps.kube;
    if (!kube) return null;
    const now = await kube.readWorkCounts(ctx.row.id);
    const target = targetCounts(ctx);
    if (now.pods === target.pods && now.jobs === target.jobs) return [];
    const annotation =
      ctx.to === 'active' ? `remove ${STOP_TASKS_ANNOTATION}` : `${STOP_TASKS_ANNOTATION}=true`;
    return [
      `quota pods ${now.pods} -> ${target.pods}, jobs ${now.jobs} -> ${target.jobs}; namespace ${annotation} (${kube.where})`,
    ];
  },
  async apply(ctx, planned) {
    const kube = ctx.deps.kube!;
    await kube.setStopAnnotation(ctx.row.id, ctx.to !== 'active');
    await kube.setWorkCounts(ctx.row.id, targetCounts(ctx));
    return planned;
  },
};

/**
 * Suspension only: deletes the tenant's running Jobs (their Pods follow in the background). Limiting never
 * runs this step: the zero quota stops new Jobs and the running ones finish. The dry run lists the Jobs.
 */
export const deleteRunningJobsStep: Step<ClusterStepContext, 'jobs'> = {
  name: 'jobs',
  async plan(ctx) {
    const kube = ctx.deps.kube;
    if (!kube || ctx.to !== 'suspended') return null;
    const names = await kube.runningJobs(ctx.row.id);
    return names.map((n) => `delete Job ${ctx.row.id}/${n} (propagationPolicy ${JOB_PROPAGATION_POLICY})`);
  },
  async apply(ctx) {
    const kube = ctx.deps.kube!;
    const done: string[] = [];
    // Listed again: a Job may have finished, or a new one started, since the plan.
    for (const name of await kube.runningJobs(ctx.row.id)) {
      const outcome = await kube.deleteJob(ctx.row.id, name);
      done.push(
        outcome === 'deleted'
          ? `deleted Job ${ctx.row.id}/${name} (propagationPolicy ${JOB_PROPAGATION_POLICY})`
          : `Job ${ctx.row.id}/${name} was already gone`,
      );
    }
    return done;
  },
};

import type { WORKLOAD_IDENTITIES } from '../config/names.ts';

export type Workload = keyof typeof WORKLOAD_IDENTITIES;

/** What one SDK call needs from IAM, or why the workload's role grants nothing for it. */
export interface CallPermission {
  readonly actions: readonly string[];
  /** Required when `actions` is empty: why the call never runs in this workload on the platform. */
  readonly notGranted?: string;
}

export interface WorkloadActions {
  /** Entry points the workload's pods run; stacks/workload-actions.test.ts follows their imports. */
  readonly entryPoints: readonly string[];
  /** `<sdk client package>:<operation>` -> the IAM actions it needs. */
  readonly calls: Readonly<Record<string, CallPermission>>;
}

const VIEW_BUDGET = { actions: ['budgets:ViewBudget'] };
const MODIFY_BUDGET = { actions: ['budgets:ModifyBudget'] };
const same = (service: string, operation: string) => ({ actions: [`${service}:${operation}`] });

/** Reconciling a tenant's budget (tenants/tenant-aws.ts); onboarding, tier changes and resumes call it. */
const TENANT_BUDGET_CALLS = {
  'client-budgets:DescribeBudget': VIEW_BUDGET,
  'client-budgets:DescribeNotificationsForBudget': VIEW_BUDGET,
  // Created with the tenant's tags (ResourceTags), which needs the tagging action as well.
  'client-budgets:CreateBudget': { actions: ['budgets:ModifyBudget', 'budgets:TagResource'] },
  'client-budgets:UpdateBudget': MODIFY_BUDGET,
  'client-budgets:CreateNotification': MODIFY_BUDGET,
} as const;

/** The console imports the cost guard's report and input modules to read stored runs, never to send these. */
const CONSOLE_READS_GUARD_RUNS =
  'imported with tenants/cost-guard/report.ts and inputs.ts, which the console uses only to read stored guard runs from the catalog';

/**
 * One list per workload of the AWS calls its code makes; each role's policy is built from it
 * (stacks/cluster.ts), and a test fails when the code sends a call the list lacks, or the list keeps one the
 * code no longer sends.
 */
export const WORKLOAD_ACTIONS: Record<Workload, WorkloadActions> = {
  controlPlane: {
    entryPoints: ['bin/control-plane.ts'],
    calls: {
      ...TENANT_BUDGET_CALLS,
      'client-cost-explorer:GetCostAndUsage': { actions: [], notGranted: CONSOLE_READS_GUARD_RUNS },
      'client-sesv2:SendEmail': { actions: [], notGranted: CONSOLE_READS_GUARD_RUNS },
      // The console's Health page: the latest automated snapshot of the database (console/backups.ts).
      'client-rds:DescribeDBSnapshots': same('rds', 'DescribeDBSnapshots'),
    },
  },
  costGuard: {
    entryPoints: ['bin/cost-guard.ts', 'bin/cost-report.ts', 'bin/billing.ts'],
    calls: {
      'client-cost-explorer:GetCostAndUsage': same('ce', 'GetCostAndUsage'),
      // The alarm topic is encrypted with a customer-managed key: publishing also encrypts with it.
      'client-sns:Publish': { actions: ['sns:Publish', 'kms:GenerateDataKey*', 'kms:Decrypt'] },
      'client-sesv2:SendEmail': same('ses', 'SendEmail'),
      ...TENANT_BUDGET_CALLS,
    },
  },
  drills: {
    entryPoints: ['bin/dr-drill.ts'],
    calls: {
      'client-rds:DescribeDBInstances': same('rds', 'DescribeDBInstances'),
      'client-rds:DescribeDBSnapshots': same('rds', 'DescribeDBSnapshots'),
      'client-rds:RebootDBInstance': same('rds', 'RebootDBInstance'),
      'client-rds:CreateDBSnapshot': { actions: ['rds:CreateDBSnapshot', 'rds:AddTagsToResource'] },
      'client-rds:RestoreDBInstanceFromDBSnapshot': {
        actions: ['rds:RestoreDBInstanceFromDBSnapshot', 'rds:AddTagsToResource'],
      },
      'client-rds:RestoreDBInstanceToPointInTime': {
        actions: ['rds:RestoreDBInstanceToPointInTime', 'rds:AddTagsToResource'],
      },
      'client-rds:DeleteDBInstance': same('rds', 'DeleteDBInstance'),
      'client-rds:DeleteDBSnapshot': same('rds', 'DeleteDBSnapshot'),
      'client-rds:DescribeDBClusters': {
        actions: [],
        notGranted: 'only for a Multi-AZ DB cluster topology; the data stack deploys a Multi-AZ instance',
      },
      'client-rds:FailoverDBCluster': {
        actions: [],
        notGranted: 'only for a Multi-AZ DB cluster topology; the data stack deploys a Multi-AZ instance',
      },
      'client-elasticache:DescribeReplicationGroups': same('elasticache', 'DescribeReplicationGroups'),
      'client-elasticache:TestFailover': same('elasticache', 'TestFailover'),
    },
  },
};

/** Thrown when a policy asks for a call that its workload's list does not hold. */
export class WorkloadActionsError extends Error {
  override readonly name = 'WorkloadActionsError';
}

/** The IAM actions of the named calls of one workload, optionally only those of one IAM service prefix. */
export function actionsFor(workload: Workload, calls: readonly string[], service?: string): string[] {
  const listed = WORKLOAD_ACTIONS[workload].calls;
  const actions = calls.flatMap((call) => {
    const permission = listed[call];
    if (!permission) throw new WorkloadActionsError(`${workload}: '${call}' is not in WORKLOAD_ACTIONS`);
    return permission.actions;
  });
  return [...new Set(actions.filter((a) => service === undefined || a.startsWith(`${service}:`)))];
}

/** Every IAM action one workload's list grants. */
export function allActions(workload: Workload): string[] {
  return [...new Set(Object.values(WORKLOAD_ACTIONS[workload].calls).flatMap((p) => p.actions))].sort();
}

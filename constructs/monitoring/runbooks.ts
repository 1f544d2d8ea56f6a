/** Runbooks alarms link to (files under runbooks/, owned by the DR engineer). */
export const RUNBOOKS = {
  rdsPerformance: 'rds-performance.md',
  rdsStorage: 'rds-storage.md',
  rdsFailover: 'rds-failover.md',
  cachePerformance: 'cache-performance.md',
  cacheFailover: 'cache-failover.md',
  eksNodeGroupReplacement: 'eks-node-group-replacement.md',
} as const;

export type Runbook = (typeof RUNBOOKS)[keyof typeof RUNBOOKS];

/** Path of a runbook relative to the repository root, as it appears in alarm descriptions. */
export function runbookPath(runbook: Runbook): string {
  return `runbooks/${runbook}`;
}

/** An alarm description: what it means, then where to go. */
export function alarmDescription(summary: string, runbook: Runbook): string {
  return `${summary} Runbook: ${runbookPath(runbook)}`;
}

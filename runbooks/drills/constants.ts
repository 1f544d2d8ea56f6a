// Kept free of heavy imports: the CLI's --help loads only this, commander and pino.

export const DRILL_NAMES = ['rds-failover', 'snapshot-restore', 'pitr', 'cache-failover'] as const;
export type DrillName = (typeof DRILL_NAMES)[number];

/** Multi-AZ DB instance (failover = reboot with ForceFailover) or Multi-AZ DB cluster (FailoverDBCluster). */
export const DATABASE_TOPOLOGIES = ['multi-az-instance', 'multi-az-cluster'] as const;
export type DatabaseTopology = (typeof DATABASE_TOPOLOGIES)[number];

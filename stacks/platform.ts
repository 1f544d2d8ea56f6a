import { type App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { EnvironmentConfig } from '../config/environments.ts';
import { cacheNodeIds, clusterName, databaseInstanceId, platformTags } from '../config/names.ts';
import { PlatformChecks } from '../constructs/nag/platform-checks.ts';
import { UNTAGGABLE_TYPES } from '../constructs/nag/required-tags.ts';
import { CacheStack } from './cache.ts';
import { ClusterStack } from './cluster.ts';
import { CostStack } from './cost.ts';
import { DataStack } from './data.ts';
import { GitHubStack, needsGitHubStack } from './github.ts';
import { NetworkStack } from './network.ts';
import { ObservabilityStack } from './observability.ts';
import { WorkloadsStack } from './workloads.ts';

/** The stacks of one environment, in deployment order. */
export interface PlatformStacks {
  readonly network: NetworkStack;
  readonly cluster: ClusterStack;
  readonly data: DataStack;
  readonly cache: CacheStack;
  readonly observability: ObservabilityStack;
  readonly cost: CostStack;
  /** The platform image, charts, load balancer controller and tenant DNS and TLS. */
  readonly workloads: WorkloadsStack;
  /** Roles for GitHub Actions; absent where the config names no GitHub Environment. */
  readonly github?: GitHubStack;
}

/** Stack id of one part of one environment, e.g. `AgentPlatform-prod-Data`. */
export function stackId(config: EnvironmentConfig, part: string): string {
  return `AgentPlatform-${config.name}-${part}`;
}

/** Composes one environment's stacks into the app, tags everything and registers the nag packs. */
export function createPlatform(app: App, config: EnvironmentConfig): PlatformStacks {
  // The VPC stays a strong reference (replacing it means rebuilding everything anyway); the cluster security
  // group and the alarm topic are found by name (SSM, topic ARN) so that neither is pinned by an export.
  app.node.setContext('@aws-cdk/core:defaultCrossStackReferences', 'strong');
  const base = { config };
  const network = new NetworkStack(app, stackId(config, 'Network'), base);
  const cluster = new ClusterStack(app, stackId(config, 'Cluster'), { ...base, vpc: network.vpc });
  const data = new DataStack(app, stackId(config, 'Data'), { ...base, vpc: network.vpc });
  const cache = new CacheStack(app, stackId(config, 'Cache'), { ...base, vpc: network.vpc });
  // Both read the cluster security group from the parameter the cluster stack writes.
  data.addStackDependency(cluster);
  cache.addStackDependency(cluster);
  const observability = new ObservabilityStack(app, stackId(config, 'Observability'), {
    ...base,
    databaseInstanceId: databaseInstanceId(config),
    cacheNodeIds: cacheNodeIds(config),
    clusterName: clusterName(config),
  });
  // Alarms address the data stores and the cluster by name, so the order is explicit rather than implied.
  observability.addStackDependency(data);
  observability.addStackDependency(cache);
  observability.addStackDependency(cluster);
  const cost = new CostStack(app, stackId(config, 'Cost'), base);
  cost.addStackDependency(observability);
  const workloads = new WorkloadsStack(app, stackId(config, 'Workloads'), {
    ...base,
    vpc: network.vpc,
    cluster: cluster.cluster,
  });
  // The pods start against the database and the cache, and the ALB reaches them through the cluster security group.
  workloads.addStackDependency(data);
  workloads.addStackDependency(cache);
  const github = needsGitHubStack(config)
    ? new GitHubStack(app, stackId(config, 'GitHub'), { ...base, drillAccess: cluster.drillAccess })
    : undefined;

  for (const [key, value] of Object.entries(platformTags(config))) {
    Tags.of(app).add(key, value, { excludeResourceTypes: [...UNTAGGABLE_TYPES] });
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new PlatformChecks(app));
  return { network, cluster, data, cache, observability, cost, workloads, ...(github ? { github } : {}) };
}

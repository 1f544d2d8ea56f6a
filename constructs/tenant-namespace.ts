import { App, Chart, type ChartProps } from 'cdk8s';
import {
  IntOrString,
  KubeLimitRange,
  KubeNamespace,
  KubeNetworkPolicy,
  KubeResourceQuota,
  Quantity,
} from 'cdk8s-plus-28/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { TENANT_QUOTA_NAME } from '../tenants/kubernetes/names.ts';
import type { Tier } from '../tenants/tiers.ts';
import { loadBalancerSourceCidr } from './ingress-source.ts';
import { MAX_TASK_SECONDS_LABEL, maxTaskSeconds } from './task-deadline-policy.ts';

/** Thrown for props the chart cannot render; names the tenant and the offending prop. */
export class TenantNamespaceError extends Error {
  override readonly name = 'TenantNamespaceError';
}

export interface TenantNamespaceProps {
  /** Tenant id; names the namespace and the `tenant` label. Must already be a valid tenant id. */
  readonly tenantId: string;
  /** Tier whose Kubernetes limits become the ResourceQuota and LimitRange. */
  readonly tier: Tier;
  /** The tenant's public hostname, recorded as a namespace annotation for the platform ingress. */
  readonly hostname: string;
  /**
   * Replaces the tier's pod and job counts; the cost guard passes 0 to stop new work.
   * @default - the tier's pods and jobs
   */
  readonly quotaOverride?: { readonly pods?: number; readonly jobs?: number };
  /**
   * Private network (VPC) CIDR where the database (5432) and the cache (6379) live. Ingress is admitted only
   * from its load balancer block (constructs/ingress-source.ts).
   * @default '10.0.0.0/8'
   */
  readonly privateNetworkCidr?: string;
}

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Labels every object of a tenant carries. */
export function tenantLabels(tenantId: string, tierName: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'tenant',
    'app.kubernetes.io/instance': tenantId,
    'app.kubernetes.io/part-of': 'agent-platform',
    'app.kubernetes.io/managed-by': 'agent-platform-tenants',
    'agent-platform.io/tier': tierName,
    tenant: tenantId,
  };
}

/** A tenant's namespace: labels, quota and limit range from the tier, and a default-deny network policy. */
export class TenantNamespaceChart extends Chart {
  constructor(scope: Construct, id: string, props: TenantNamespaceProps, chartProps: ChartProps = {}) {
    const labels = tenantLabels(props.tenantId, props.tier.name);
    super(scope, id, { ...chartProps, labels });
    const namespace = props.tenantId;
    const k8s = props.tier.kubernetes;
    const pods = props.quotaOverride?.pods ?? k8s.pods;
    const jobs = props.quotaOverride?.jobs ?? k8s.jobs;
    for (const [prop, value] of [
      ['pods', pods],
      ['jobs', jobs],
    ] as const) {
      if (!Number.isInteger(value) || value < 0) {
        throw new TenantNamespaceError(
          `tenant '${props.tenantId}': 'quotaOverride.${prop}' (${value}) must be a whole number >= 0`,
        );
      }
    }

    new KubeNamespace(this, 'namespace', {
      metadata: {
        name: namespace,
        labels: {
          ...labels,
          // Tenant code runs under the restricted Pod Security Standard.
          'pod-security.kubernetes.io/enforce': 'restricted',
          [MAX_TASK_SECONDS_LABEL]: String(maxTaskSeconds(props.tier)),
        },
        annotations: { 'agent-platform.io/hostname': props.hostname },
      },
    });

    new KubeResourceQuota(this, 'quota', {
      metadata: { name: TENANT_QUOTA_NAME, namespace },
      spec: {
        hard: {
          'requests.cpu': Quantity.fromString(k8s.requestsCpu),
          'limits.cpu': Quantity.fromString(k8s.limitsCpu),
          'requests.memory': Quantity.fromString(k8s.requestsMemory),
          'limits.memory': Quantity.fromString(k8s.limitsMemory),
          pods: Quantity.fromNumber(pods),
          'count/jobs.batch': Quantity.fromNumber(jobs),
        },
      },
    });

    new KubeLimitRange(this, 'limits', {
      metadata: { name: 'tenant-limits', namespace },
      spec: {
        limits: [
          {
            type: 'Container',
            defaultRequest: {
              cpu: Quantity.fromString(k8s.containerDefaultRequestCpu),
              memory: Quantity.fromString(k8s.containerDefaultRequestMemory),
            },
            default: {
              cpu: Quantity.fromString(k8s.containerDefaultLimitCpu),
              memory: Quantity.fromString(k8s.containerDefaultLimitMemory),
            },
            max: {
              cpu: Quantity.fromString(k8s.containerMaxCpu),
              memory: Quantity.fromString(k8s.containerMaxMemory),
            },
          },
        ],
      },
    });

    const tcp = (port: number) => ({ protocol: 'TCP', port: IntOrString.fromNumber(port) });
    const networkCidr = props.privateNetworkCidr ?? '10.0.0.0/8';
    const privateNetwork = { ipBlock: { cidr: networkCidr } };
    new KubeNetworkPolicy(this, 'network', {
      metadata: { name: 'tenant-isolation', namespace },
      spec: {
        // Every pod of the namespace; anything not allowed below is denied in both directions.
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        // Only the ALB's addresses (IP targets): no pod of any namespace, the platform's included.
        ingress: [{ from: [{ ipBlock: { cidr: loadBalancerSourceCidr(networkCidr) } }] }],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } } }],
            ports: [
              { protocol: 'UDP', port: IntOrString.fromNumber(53) },
              { protocol: 'TCP', port: IntOrString.fromNumber(53) },
            ],
          },
          { to: [privateNetwork], ports: [tcp(5432)] },
          { to: [privateNetwork], ports: [tcp(6379)] },
        ],
      },
    });
  }
}

/** The tenant's manifests as one multi-document YAML string; no files are written. */
export function renderTenantManifests(props: TenantNamespaceProps): string {
  const app = new App({ outdir: '/nonexistent-cdk8s-outdir' });
  new TenantNamespaceChart(app, props.tenantId, props);
  return app.synthYaml();
}

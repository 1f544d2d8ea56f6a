import { ApiObject, App, Chart, type ChartProps, JsonPatch } from 'cdk8s';
import {
  type Container,
  type EnvVar,
  IntOrString,
  KubeCronJob,
  KubeDeployment,
  KubeHorizontalPodAutoscalerV2,
  KubeIngress,
  KubeNamespace,
  KubeNetworkPolicy,
  KubePodDisruptionBudget,
  KubeService,
  KubeServiceAccount,
  type NetworkPolicyEgressRule,
  type PodSpec,
  Quantity,
} from 'cdk8s-plus-28/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import type { EnvironmentName } from '../config/environments.ts';
import { HEARTBEATS_SECRET, WORKLOAD_IDENTITIES } from '../config/names.ts';
import {
  BILLING_EXPORT_SCHEDULE,
  BILLING_RECONCILE_SCHEDULE,
  COST_GUARD_SCHEDULE,
  CRON_JOB_DEADLINES,
  nodeHeapOption,
  type WorkloadsConfig,
} from '../config/workloads.ts';
import { addPlatformRbac } from './platform-rbac.ts';
import { addTaskDeadlinePolicy } from './task-deadline-policy.ts';

/** Thrown for props the chart cannot render; quotes the offending prop and value. */
export class PlatformWorkloadsError extends Error {
  override readonly name = 'PlatformWorkloadsError';
}

/** Where the manifests go: EKS (deployed by the cluster stack, AWS APIs) or a customer's cluster (no AWS). */
export type WorkloadsTarget = 'eks' | 'self-hosted';

export interface PlatformWorkloadsProps {
  readonly target: WorkloadsTarget;
  /** Environment config the services load (`ENV`, `--env`). */
  readonly env: EnvironmentName;
  /** The platform image (Dockerfile at the repository root), by digest or tag. */
  readonly image: string;
  /** Tenants are `{tenant}.app.<domain>`, operators use `api.<domain>`. */
  readonly domain: string;
  readonly sizes: WorkloadsConfig;
  /** Private CIDR where PostgreSQL (5432) and Redis (6379) live. */
  readonly dataNetworkCidr: string;
  /**
   * The control plane's TRUST_PROXY: a hop count or the proxies' CIDRs (control-plane/config.ts refuses `true`).
   * EKS: the load balancer subnets; self-hosted: the hop count of the customer's ingress controller.
   */
  readonly trustProxy: string;
  /**
   * EKS only: the CIDR the load balancer's addresses come from (INGRESS_SOURCE). The stack's own ALB forwards to
   * the pods as IP targets through a TargetGroupBinding, so the chart renders no Ingress there.
   */
  readonly loadBalancerSourceCidr?: string;
  /** Self-hosted only: the customer's ingress class. */
  readonly ingressClassName?: string;
  /** Self-hosted only: namespace of the ingress controller's pods, the only source of traffic to the control plane. */
  readonly ingressNamespace?: string;
  /** Self-hosted only: the TLS Secret (created by the customer) for both hosts. */
  readonly tlsSecretName?: string;
}

export const PLATFORM_NAMESPACE = WORKLOAD_IDENTITIES.controlPlane.namespace;
/** Name of the control plane's Deployment, Service, HPA and PDB; runbooks use it. */
export const CONTROL_PLANE_NAME = 'control-plane';
export const CONTROL_PLANE_PORT = 8080;
/** Secret the operator creates: DATABASE_URL, REDIS_URL, JWT_SECRET (or JWT_PUBLIC_KEY / JWT_JWKS_URL). */
export const PLATFORM_ENV_SECRET = 'platform-env';
/** Billing CronJobs and their BetterStack heartbeat keys in HEARTBEATS_SECRET. */
export const BILLING_CRONJOBS = ['billing-export', 'billing-reconcile'] as const;
/** The database limits watchdog's Deployment and service account. */
export const DB_WATCHDOG_NAME = 'db-watchdog';

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
const RUNTIME_USER = 10001;

function labelsOf(name: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/part-of': 'agent-platform',
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
}

/** The container hardening every platform pod gets. */
function hardened(container: Container): Container {
  return {
    ...container,
    imagePullPolicy: 'IfNotPresent',
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUNTIME_USER,
      runAsGroup: RUNTIME_USER,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
  };
}

function podSpec(serviceAccountName: string, containers: Container[], extra: Partial<PodSpec> = {}): PodSpec {
  return {
    serviceAccountName,
    automountServiceAccountToken: true,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUNTIME_USER,
      runAsGroup: RUNTIME_USER,
      fsGroup: RUNTIME_USER,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: containers.map(hardened),
    volumes: [{ name: 'tmp', emptyDir: { sizeLimit: Quantity.fromString('256Mi') } }],
    ...extra,
  };
}

const tcp = (port: number) => ({ protocol: 'TCP', port: IntOrString.fromNumber(port) });

/**
 * The platform's own workloads in the `platform` namespace: the control plane (Deployment, Service, HPA, PDB, and
 * self-hosted an Ingress), the database limits watchdog, on EKS the cost-guard CronJob with its RBAC and the
 * DR-drill CronJob where the config schedules one, and the namespace's NetworkPolicies. Secrets are referenced
 * by name only; the manifests carry no secret value.
 */
export class PlatformWorkloadsChart extends Chart {
  constructor(scope: Construct, id: string, props: PlatformWorkloadsProps, chartProps: ChartProps = {}) {
    super(scope, id, { ...chartProps, namespace: PLATFORM_NAMESPACE });
    validate(props);
    const aws = props.target === 'eks';
    const sizes = props.sizes.controlPlane;
    const commonEnv = [
      { name: 'ENV', value: props.env },
      { name: 'HOME', value: '/tmp' },
      { name: 'NODE_ENV', value: 'production' },
    ];
    const envFrom = [{ secretRef: { name: PLATFORM_ENV_SECRET } }];

    new KubeNamespace(this, 'namespace', {
      metadata: { name: PLATFORM_NAMESPACE, labels: labelsOf('platform') },
    });
    const serviceAccount = (name: string) =>
      new KubeServiceAccount(this, `sa-${name}`, {
        metadata: { name, labels: labelsOf(name) },
        automountServiceAccountToken: false,
      });
    serviceAccount(WORKLOAD_IDENTITIES.controlPlane.serviceAccount);
    if (aws) serviceAccount(WORKLOAD_IDENTITIES.costGuard.serviceAccount);
    serviceAccount(DB_WATCHDOG_NAME);

    const selector = { 'app.kubernetes.io/name': CONTROL_PLANE_NAME };
    new KubeDeployment(this, 'control-plane', {
      metadata: { name: CONTROL_PLANE_NAME, labels: labelsOf(CONTROL_PLANE_NAME) },
      spec: {
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: labelsOf(CONTROL_PLANE_NAME) },
          spec: podSpec(
            WORKLOAD_IDENTITIES.controlPlane.serviceAccount,
            [
              {
                name: CONTROL_PLANE_NAME,
                image: props.image,
                command: ['node', 'dist/bin/control-plane.js'],
                ports: [{ name: 'http', containerPort: CONTROL_PLANE_PORT }],
                env: [
                  ...commonEnv,
                  { name: 'PORT', value: String(CONTROL_PLANE_PORT) },
                  { name: 'NODE_OPTIONS', value: nodeHeapOption(sizes.memory.limit) },
                  { name: 'TRUST_PROXY', value: props.trustProxy },
                  { name: 'PUBLIC_DOMAIN', value: props.domain },
                  { name: 'AWS_PROVISIONING', value: String(aws) },
                ],
                envFrom,
                resources: {
                  requests: {
                    cpu: Quantity.fromString(sizes.cpu.request),
                    memory: Quantity.fromString(sizes.memory.request),
                  },
                  limits: {
                    cpu: Quantity.fromString(sizes.cpu.limit),
                    memory: Quantity.fromString(sizes.memory.limit),
                  },
                },
                readinessProbe: {
                  httpGet: { path: '/readyz', port: IntOrString.fromString('http') },
                  periodSeconds: 5,
                  failureThreshold: 3,
                },
                livenessProbe: {
                  httpGet: { path: '/healthz', port: IntOrString.fromString('http') },
                  initialDelaySeconds: 10,
                  periodSeconds: 10,
                  failureThreshold: 3,
                },
              },
            ],
            {
              // The process drains requests and flushes usage on SIGTERM within SHUTDOWN_TIMEOUT_MS (10 s).
              terminationGracePeriodSeconds: 30,
              topologySpreadConstraints: [
                {
                  topologyKey: 'topology.kubernetes.io/zone',
                  maxSkew: 1,
                  whenUnsatisfiable: 'ScheduleAnyway',
                  labelSelector: { matchLabels: selector },
                },
              ],
            },
          ),
        },
      },
    });
    new KubeService(this, 'control-plane-service', {
      metadata: { name: CONTROL_PLANE_NAME, labels: labelsOf(CONTROL_PLANE_NAME) },
      spec: {
        selector,
        ports: [{ name: 'http', port: 80, targetPort: IntOrString.fromString('http') }],
      },
    });
    new KubeHorizontalPodAutoscalerV2(this, 'control-plane-hpa', {
      metadata: { name: CONTROL_PLANE_NAME, labels: labelsOf(CONTROL_PLANE_NAME) },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: CONTROL_PLANE_NAME },
        minReplicas: sizes.minReplicas,
        maxReplicas: sizes.maxReplicas,
        metrics: [
          {
            type: 'Resource',
            resource: {
              name: 'cpu',
              target: { type: 'Utilization', averageUtilization: sizes.targetCpuPercent },
            },
          },
        ],
      },
    });
    new KubePodDisruptionBudget(this, 'control-plane-pdb', {
      metadata: { name: CONTROL_PLANE_NAME, labels: labelsOf(CONTROL_PLANE_NAME) },
      spec: { maxUnavailable: IntOrString.fromNumber(1), selector: { matchLabels: selector } },
    });
    if (!aws) this.ingress(props);

    const heartbeat = (key: string) => ({
      name: 'HEARTBEAT_URL',
      valueFrom: { secretKeyRef: { name: HEARTBEATS_SECRET, key, optional: true } },
    });
    const cronJob = (
      name: string,
      serviceAccountName: string,
      schedule: string,
      command: string[],
      key: string,
      extraEnv: EnvVar[] = [],
    ) =>
      new KubeCronJob(this, `cron-${name}`, {
        metadata: { name, labels: labelsOf(name) },
        spec: {
          schedule,
          timeZone: 'Etc/UTC',
          concurrencyPolicy: 'Forbid',
          startingDeadlineSeconds: CRON_JOB_DEADLINES.startingDeadlineSeconds,
          successfulJobsHistoryLimit: 3,
          failedJobsHistoryLimit: 5,
          jobTemplate: {
            spec: {
              backoffLimit: 0,
              activeDeadlineSeconds: CRON_JOB_DEADLINES.activeDeadlineSeconds,
              template: {
                metadata: { labels: labelsOf(name) },
                spec: podSpec(
                  serviceAccountName,
                  [
                    {
                      name,
                      image: props.image,
                      command: [
                        'node',
                        'dist/bin/with-heartbeat.js',
                        '--job',
                        name,
                        '--',
                        'node',
                        ...command,
                      ],
                      env: [...commonEnv, heartbeat(key), ...extraEnv],
                      envFrom,
                      resources: {
                        requests: { cpu: Quantity.fromString('250m'), memory: Quantity.fromString('512Mi') },
                        limits: { cpu: Quantity.fromString('1'), memory: Quantity.fromString('1Gi') },
                      },
                    },
                  ],
                  { restartPolicy: 'Never' },
                ),
              },
            },
          },
        },
      });
    // The guard's billing evidence is Cost Explorer (tenants/cost-guard/README.md): AWS only.
    if (aws) {
      cronJob(
        'cost-guard',
        WORKLOAD_IDENTITIES.costGuard.serviceAccount,
        COST_GUARD_SCHEDULE,
        ['dist/bin/cost-guard.js', 'run', '--apply', '--env', props.env],
        'cost-guard',
      );
      // Billing is ours, so it runs on EKS only, under the cost guard's identity: its only AWS call is
      // publishing to the alarm topic, which that role grants. The Stripe key comes from the platform Secret by reference; a missing key fails the pod.
      const stripeKey = {
        name: 'STRIPE_API_KEY',
        valueFrom: { secretKeyRef: { name: PLATFORM_ENV_SECRET, key: 'STRIPE_API_KEY' } },
      };
      cronJob(
        'billing-export',
        WORKLOAD_IDENTITIES.costGuard.serviceAccount,
        BILLING_EXPORT_SCHEDULE,
        ['dist/bin/billing.js', '--env', props.env, 'export'],
        'billing-export',
        [stripeKey],
      );
      cronJob(
        'billing-reconcile',
        WORKLOAD_IDENTITIES.costGuard.serviceAccount,
        BILLING_RECONCILE_SCHEDULE,
        ['dist/bin/billing.js', '--env', props.env, 'reconcile'],
        'billing-reconcile',
        [stripeKey],
      );
    }
    addPlatformRbac(this, labelsOf, { costGuard: aws });
    addTaskDeadlinePolicy(this, labelsOf('platform'));
    this.dbWatchdog(props);
    if (aws && props.sizes.drillSchedule !== null) {
      serviceAccount(WORKLOAD_IDENTITIES.drills.serviceAccount);
      cronJob(
        'dr-drill',
        WORKLOAD_IDENTITIES.drills.serviceAccount,
        props.sizes.drillSchedule,
        ['dist/bin/dr-drill.js', 'snapshot-restore', '--env', props.env],
        'dr-drill',
      );
    }
    this.networkPolicies(props, aws);
    for (const child of this.node.findAll()) {
      if (child instanceof ApiObject && CLUSTER_SCOPED.has(child.kind)) {
        child.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
      }
    }
  }

  /** Self-hosted: the customer's ingress controller terminates TLS for both hosts with their Secret. */
  private ingress(props: PlatformWorkloadsProps): void {
    const backend = { service: { name: CONTROL_PLANE_NAME, port: { name: 'http' } } };
    const rule = (host: string) => ({ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend }] } });
    const hosts = [`*.app.${props.domain}`, `api.${props.domain}`];
    new KubeIngress(this, 'ingress', {
      metadata: { name: CONTROL_PLANE_NAME, labels: labelsOf(CONTROL_PLANE_NAME) },
      spec: {
        ingressClassName: props.ingressClassName!,
        rules: hosts.map(rule),
        tls: [{ hosts, secretName: props.tlsSecretName! }],
      },
    });
  }

  /**
   * The database limits watchdog (bin/db-watchdog.ts): one replica that cancels tenant statements past their tier's
   * limits in every cell of the env config (ENV), with the catalog from DATABASE_URL. It talks only to
   * PostgreSQL; it needs no Kubernetes API token.
   */
  private dbWatchdog(props: PlatformWorkloadsProps): void {
    const sizes = props.sizes.dbWatchdog;
    const selector = { 'app.kubernetes.io/name': DB_WATCHDOG_NAME };
    new KubeDeployment(this, 'db-watchdog', {
      metadata: { name: DB_WATCHDOG_NAME, labels: labelsOf(DB_WATCHDOG_NAME) },
      spec: {
        replicas: 1,
        // Two watchdogs would only signal the same backends twice; one at a time is enough.
        strategy: { type: 'Recreate' },
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: labelsOf(DB_WATCHDOG_NAME) },
          spec: podSpec(
            DB_WATCHDOG_NAME,
            [
              {
                name: DB_WATCHDOG_NAME,
                image: props.image,
                command: ['node', 'dist/bin/db-watchdog.js'],
                env: [
                  { name: 'ENV', value: props.env },
                  { name: 'HOME', value: '/tmp' },
                  { name: 'NODE_ENV', value: 'production' },
                  { name: 'NODE_OPTIONS', value: nodeHeapOption(sizes.memory.limit) },
                  {
                    name: 'DATABASE_URL',
                    valueFrom: { secretKeyRef: { name: PLATFORM_ENV_SECRET, key: 'DATABASE_URL' } },
                  },
                ],
                resources: {
                  requests: {
                    cpu: Quantity.fromString(sizes.cpu.request),
                    memory: Quantity.fromString(sizes.memory.request),
                  },
                  limits: {
                    cpu: Quantity.fromString(sizes.cpu.limit),
                    memory: Quantity.fromString(sizes.memory.limit),
                  },
                },
              },
            ],
            { automountServiceAccountToken: false, terminationGracePeriodSeconds: 15 },
          ),
        },
      },
    });
  }

  /** Default deny in both directions, then exactly the flows each workload needs. */
  private networkPolicies(props: PlatformWorkloadsProps, aws: boolean): void {
    const data = { ipBlock: { cidr: props.dataNetworkCidr } };
    const dns: NetworkPolicyEgressRule = {
      to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } } }],
      ports: [
        { protocol: 'UDP', port: IntOrString.fromNumber(53) },
        { protocol: 'TCP', port: IntOrString.fromNumber(53) },
      ],
    };
    // HTTPS out: AWS APIs, the Kubernetes API, BetterStack heartbeats and JWKS. The VPC endpoints have no fixed CIDR.
    const https: NetworkPolicyEgressRule = { ports: [tcp(443)] };
    const policy = (id: string, name: string, spec: Record<string, unknown>) =>
      new KubeNetworkPolicy(this, `netpol-${id}`, {
        metadata: { name, labels: labelsOf('platform') },
        spec: spec as never,
      });
    policy('deny-all', 'default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    policy('dns', 'allow-dns', { podSelector: {}, policyTypes: ['Egress'], egress: [dns] });
    const app = (name: string) => ({ matchLabels: { 'app.kubernetes.io/name': name } });
    // With IP targets the ALB connects to the pods from its own addresses in the public subnets, not from a pod.
    const ingressPeer = aws
      ? { ipBlock: { cidr: props.loadBalancerSourceCidr! } }
      : { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: props.ingressNamespace! } } };
    policy('control-plane', 'control-plane', {
      podSelector: app(CONTROL_PLANE_NAME),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [ingressPeer], ports: [tcp(CONTROL_PLANE_PORT)] }],
      egress: [{ to: [data], ports: [tcp(5432), tcp(6379)] }, https],
    });
    if (aws) {
      policy('cost-guard', 'cost-guard', {
        podSelector: app('cost-guard'),
        policyTypes: ['Ingress', 'Egress'],
        egress: [{ to: [data], ports: [tcp(5432)] }, https],
      });
      // The catalog, and HTTPS to Stripe, SNS and BetterStack.
      for (const name of BILLING_CRONJOBS) {
        policy(name, name, {
          podSelector: app(name),
          policyTypes: ['Ingress', 'Egress'],
          egress: [{ to: [data], ports: [tcp(5432)] }, https],
        });
      }
    }
    policy('db-watchdog', DB_WATCHDOG_NAME, {
      podSelector: app(DB_WATCHDOG_NAME),
      policyTypes: ['Ingress', 'Egress'],
      egress: [{ to: [data], ports: [tcp(5432)] }],
    });
    if (aws && props.sizes.drillSchedule !== null) {
      policy('dr-drill', 'dr-drill', {
        podSelector: app('dr-drill'),
        policyTypes: ['Ingress', 'Egress'],
        egress: [{ to: [data], ports: [tcp(5432), tcp(6379)] }, https],
      });
    }
  }
}

function validate(props: PlatformWorkloadsProps): void {
  if (props.image.trim() === '' || /\s/.test(props.image)) {
    throw new PlatformWorkloadsError(`'image' ('${props.image}') must be an image reference`);
  }
  const cidr = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;
  if (!cidr.test(props.dataNetworkCidr)) {
    throw new PlatformWorkloadsError(`'dataNetworkCidr' ('${props.dataNetworkCidr}') must be an IPv4 CIDR`);
  }
  const trust = props.trustProxy.split(',').map((e) => e.trim());
  if (!(/^[1-9]\d?$/.test(props.trustProxy) || trust.every((e) => cidr.test(e)))) {
    throw new PlatformWorkloadsError(
      `'trustProxy' ('${props.trustProxy}') must be a hop count or a comma-separated list of IPv4 CIDRs`,
    );
  }
  const required =
    props.target === 'eks'
      ? (['loadBalancerSourceCidr'] as const)
      : (['ingressClassName', 'ingressNamespace', 'tlsSecretName'] as const);
  for (const key of required) {
    if (!props[key]) throw new PlatformWorkloadsError(`'${key}' (missing) is required on ${props.target}`);
  }
  if (props.target === 'eks' && !cidr.test(props.loadBalancerSourceCidr!)) {
    throw new PlatformWorkloadsError(
      `'loadBalancerSourceCidr' ('${props.loadBalancerSourceCidr}') must be an IPv4 CIDR`,
    );
  }
}

/** Every object of the platform chart, as plain JSON objects in apply order. */
export function renderPlatformWorkloads(props: PlatformWorkloadsProps): Record<string, unknown>[] {
  const app = new App({ outdir: '/nonexistent-cdk8s-outdir' });
  const chart = new PlatformWorkloadsChart(app, 'platform', props);
  return chart.toJson() as Record<string, unknown>[];
}

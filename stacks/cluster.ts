import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { ArnFormat, CfnOutput, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { alarmTopicArn, ConfigError, type EnvironmentConfig } from '../config/environments.ts';
import {
  APP_NAME,
  alarmTopicKeyAlias,
  cacheReplicationGroupId,
  clusterName,
  clusterSecurityGroupParameterName,
  costReportSender,
  DRILL_ENV_TAG,
  databaseInstanceId,
  resourcePrefix,
  WORKLOAD_IDENTITIES,
} from '../config/names.ts';
import { logRemovalPolicy, PlatformStack, type PlatformStackProps } from './platform-stack.ts';
import { logRetention } from './retention.ts';
import { allActions, type Workload, WorkloadActionsError } from './workload-actions.ts';

/** The given IAM actions, each checked against the workload's list (stacks/workload-actions.ts). */
function listed(workload: Workload, ...actions: string[]): string[] {
  const known = allActions(workload);
  for (const action of actions) {
    if (!known.includes(action)) {
      throw new WorkloadActionsError(`${workload}: '${action}' is granted but no listed call needs it`);
    }
  }
  return actions;
}

export interface ClusterStackProps extends PlatformStackProps {
  /** The network stack's VPC; nodes go in its private-with-egress subnets. */
  readonly vpc: ec2.IVpc;
}

/** Managed add-ons installed instead of the self-managed bootstrap ones. */
export const CORE_ADDONS = ['vpc-cni', 'kube-proxy', 'coredns', 'eks-pod-identity-agent'] as const;

/**
 * The VPC CNI enforces NetworkPolicy only with its network policy agent on: `enableNetworkPolicy` turns on
 * enforcement and `nodeAgent.enabled` runs the agent container in aws-node (stacks/README.md cites both).
 */
export const VPC_CNI_CONFIGURATION = { enableNetworkPolicy: 'true', nodeAgent: { enabled: true } } as const;

/** Container Insights add-on; it feeds the node-health alarms. */
export const OBSERVABILITY_ADDON = 'amazon-cloudwatch-observability';

/** Graviton families (m6g, c7g, r8g...) need the ARM AMI. */
/** The drills' policy and the wildcard findings it brings, with their reasons. */
export interface DrillAccess {
  readonly statements: readonly iam.PolicyStatement[];
  readonly findings: readonly (readonly [string, string])[];
  readonly reasons: Partial<Record<'Resource' | 'Action', string>>;
}

export function amiTypeFor(instanceTypes: readonly string[]): eks.NodegroupAmiType {
  return instanceTypes.every((t) => /^[a-z]+\d+g[a-z]*\./.test(t))
    ? eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
    : eks.NodegroupAmiType.AL2023_X86_64_STANDARD;
}

/** Kubernetes minor of the kubectl and helm in the kubectl handler's layer (@aws-cdk/lambda-layer-kubectl-v35). */
export const KUBECTL_LAYER_MINOR = 35;

/** kubectl supports one minor of skew against the API server (Kubernetes version skew policy). */
export function checkKubectlSkew(kubernetesVersion: string): void {
  const minor = Number(kubernetesVersion.split('.')[1]);
  if (Math.abs(minor - KUBECTL_LAYER_MINOR) > 1) {
    throw new ConfigError(
      `'cluster.kubernetesVersion' (${kubernetesVersion}) is more than one minor from the kubectl layer (1.${KUBECTL_LAYER_MINOR}): move @aws-cdk/lambda-layer-kubectl-v${KUBECTL_LAYER_MINOR} with it`,
    );
  }
}

/** A role that EKS Pod Identity lets one service account assume. */
export function podIdentityRole(scope: Construct, id: string, description: string): iam.Role {
  const role = new iam.Role(scope, id, {
    description,
    assumedBy: new iam.ServicePrincipal('pods.eks.amazonaws.com'),
  });
  role.assumeRolePolicy?.addStatements(
    new iam.PolicyStatement({
      actions: ['sts:TagSession'],
      principals: [new iam.ServicePrincipal('pods.eks.amazonaws.com')],
    }),
  );
  return role;
}

/** Conditions that confine an action to this environment's tagged resources. */
function platformResourceTags(config: EnvironmentConfig, key: 'aws:ResourceTag' | 'aws:RequestTag') {
  return { StringEquals: { [`${key}/app`]: APP_NAME, [`${key}/env`]: config.name } };
}

/**
 * EKS on aws-eks-v2 with managed node groups. Access entries, add-ons and pod identities are native CloudFormation
 * resources; the kubectl handler (a Lambda in the private subnets, reaching the private endpoint) exists only to
 * apply the platform charts and the load balancer controller from the workloads stack (stacks/workloads.ts).
 */
export class ClusterStack extends PlatformStack {
  readonly cluster: eks.Cluster;
  /** Roles of the platform workloads, by WORKLOAD_IDENTITIES key. */
  readonly workloadRoles: Record<keyof typeof WORKLOAD_IDENTITIES, iam.Role>;
  private drillAccessGrant: DrillAccess | undefined;

  constructor(scope: Construct, id: string, props: ClusterStackProps) {
    super(scope, id, props);
    const { config } = this;

    const secretsKey = new kms.Key(this, 'SecretsKey', {
      description: `EKS secrets envelope encryption (${config.name})`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // EKS writes control-plane logs here; creating it first gives it the environment's retention, and dev
    // deletes it so the next dev deploy does not meet a leftover group.
    const controlPlaneLogs = new logs.LogGroup(this, 'ControlPlaneLogs', {
      logGroupName: `/aws/eks/${clusterName(config)}/cluster`,
      retention: logRetention(config.observability.logRetentionDays, 'observability.logRetentionDays'),
      removalPolicy: logRemovalPolicy(config),
    });

    checkKubectlSkew(config.cluster.kubernetesVersion);
    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName: clusterName(config),
      version: eks.KubernetesVersion.of(config.cluster.kubernetesVersion),
      vpc: props.vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      // Operators reach the API from their laptops through the public endpoint, open only to the configured
      // CIDRs and gated by access entries; nodes and pods use the private one (stacks/README.md, "Access path").
      endpointAccess: eks.EndpointAccess.PUBLIC_AND_PRIVATE.onlyFrom(...config.cluster.publicAccessCidrs),
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
      defaultCapacity: 0,
      secretsEncryptionKey: secretsKey,
      clusterLogging: [
        eks.ClusterLoggingTypes.API,
        eks.ClusterLoggingTypes.AUDIT,
        eks.ClusterLoggingTypes.AUTHENTICATOR,
        eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
        eks.ClusterLoggingTypes.SCHEDULER,
      ],
      // Admins come from config through access entries, not from whoever ran the first deploy.
      bootstrapClusterCreatorAdminPermissions: false,
      // The core add-ons below are EKS-managed so that they are versioned and upgraded by EKS.
      bootstrapSelfManagedAddons: false,
      // With the private endpoint on, aws-eks-v2 places the handler in the cluster's private subnets, with the
      // cluster security group, and gives its role cluster-admin through an access entry.
      kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(this, 'KubectlLayer') },
    });
    this.cluster.node.addDependency(controlPlaneLogs);
    new ssm.StringParameter(this, 'ClusterSecurityGroupParameter', {
      parameterName: clusterSecurityGroupParameterName(config),
      description: 'EKS cluster security group: the data and cache stacks admit it',
      stringValue: this.cluster.clusterSecurityGroupId,
    });
    Validations.of(this.cluster).acknowledge({
      id: 'CloudFormation-Validate::W9009',
      reason:
        "aws-eks-v2 renders EncryptionConfig Resources ['secrets'], the only value EKS accepts; the envelope key is what matters.",
    });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-EKS1',
      reason: `The public endpoint is the operators' access path: it answers only ${config.cluster.publicAccessCidrs.join(', ')} (cluster.publicAccessCidrs; prod refuses 0.0.0.0/0), and access entries decide who may act.`,
    });
    Validations.of(this.cluster.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]',
      reason: 'EKS requires the AWS-managed AmazonEKSClusterPolicy on the cluster service role.',
    });

    this.acknowledgeKubectlProvider();

    for (const [i, roleArn] of config.cluster.adminPrincipalArns.entries()) {
      this.cluster.grantAccess(`Admin${i}`, roleArn, [
        eks.AccessPolicy.fromAccessPolicyName('AmazonEKSClusterAdminPolicy', {
          accessScopeType: eks.AccessScopeType.CLUSTER,
        }),
      ]);
    }

    const addons = new Map<string, eks.Addon>();
    for (const name of CORE_ADDONS) {
      addons.set(
        name,
        new eks.Addon(this, `Addon-${name}`, {
          cluster: this.cluster,
          addonName: name,
          ...(name === 'vpc-cni' ? { configurationValues: VPC_CNI_CONFIGURATION } : {}),
        }),
      );
    }

    const nodeRole = new iam.Role(this, 'NodeRole', {
      description: `EKS managed node groups (${config.name})`,
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEKSWorkerNodePolicy'),
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEC2ContainerRegistryReadOnly'),
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEKS_CNI_Policy'),
      ],
    });
    for (const policy of [
      'AmazonEKSWorkerNodePolicy',
      'AmazonEC2ContainerRegistryReadOnly',
      'AmazonEKS_CNI_Policy',
    ]) {
      Validations.of(nodeRole).acknowledge({
        id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
        reason: `EKS managed nodes need the AWS-managed ${policy} to join the cluster, pull images and run the VPC CNI.`,
      });
    }

    for (const group of config.cluster.nodeGroups) {
      const nodegroup = this.cluster.addNodegroupCapacity(group.name, {
        nodegroupName: group.name,
        nodeRole,
        instanceTypes: group.instanceTypes.map((t) => new ec2.InstanceType(t)),
        amiType: amiTypeFor(group.instanceTypes),
        minSize: group.minSize,
        desiredSize: group.desiredSize,
        maxSize: group.maxSize,
        diskSize: group.diskSizeGiB,
        subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        enableNodeAutoRepair: true,
        labels: { 'agent-platform/node-group': group.name },
      });
      // Without the bootstrap add-ons, nodes only turn Ready once the CNI and kube-proxy exist.
      nodegroup.node.addDependency(addons.get('vpc-cni')!, addons.get('kube-proxy')!);
      // CoreDNS pods need nodes to schedule on.
      addons.get('coredns')!.node.addDependency(nodegroup);
    }

    const cloudWatchAgentRole = podIdentityRole(this, 'CloudWatchAgentRole', 'Container Insights agent');
    cloudWatchAgentRole.addManagedPolicy(
      iam.ManagedPolicy.fromAwsManagedPolicyName('CloudWatchAgentServerPolicy'),
    );
    Validations.of(cloudWatchAgentRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/CloudWatchAgentServerPolicy]',
      reason:
        'The amazon-cloudwatch-observability add-on documents CloudWatchAgentServerPolicy as its required policy.',
    });
    const observability = new eks.CfnAddon(this, 'Addon-observability', {
      clusterName: this.cluster.clusterName,
      addonName: OBSERVABILITY_ADDON,
      resolveConflicts: 'OVERWRITE',
      podIdentityAssociations: [{ serviceAccount: 'cloudwatch-agent', roleArn: cloudWatchAgentRole.roleArn }],
    });
    observability.node.addDependency(addons.get('eks-pod-identity-agent')!, addons.get('coredns')!);

    this.workloadRoles = {
      controlPlane: this.controlPlaneRole(config),
      costGuard: this.costGuardRole(config),
      drills: this.drillsRole(config),
    };
    for (const [key, role] of Object.entries(this.workloadRoles)) {
      const identity = WORKLOAD_IDENTITIES[key as keyof typeof WORKLOAD_IDENTITIES];
      const association = new eks.CfnPodIdentityAssociation(this, `PodIdentity-${key}`, {
        clusterName: this.cluster.clusterName,
        namespace: identity.namespace,
        serviceAccount: identity.serviceAccount,
        roleArn: role.roleArn,
      });
      association.node.addDependency(addons.get('eks-pod-identity-agent')!);
      // For operators and charts that want the ARN; Pod Identity itself needs no annotation.
      new CfnOutput(this, `${key}RoleArn`, {
        value: role.roleArn,
        description: `${identity.serviceAccount} role`,
      });
    }
  }

  /** The kubectl handler and its custom-resource framework are aws-cdk-lib's own functions and roles. */
  private acknowledgeKubectlProvider(): void {
    const provider = this.cluster.node.findChild('KubectlProvider');
    const managed = (policy: string, why: string) =>
      Validations.of(provider).acknowledge({
        id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
        reason: why,
      });
    managed(
      'service-role/AWSLambdaBasicExecutionRole',
      'aws-eks-v2 gives the kubectl handler and its framework function the AWS-managed basic role to write their logs.',
    );
    managed(
      'service-role/AWSLambdaVPCAccessExecutionRole',
      'The kubectl handler runs in the private subnets to reach the private endpoint; Lambda needs this role to attach its ENIs.',
    );
    managed(
      'AmazonEC2ContainerRegistryReadOnly',
      'aws-eks-v2 lets the kubectl handler pull Helm charts from ECR; read-only access to registries.',
    );
    Validations.of(provider).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::{"Fn::If":["ClusterKubectlProviderHandlerHasEcrPublic69E09706",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
      reason:
        'aws-eks-v2 adds read-only ECR Public access in the aws partition, for Helm charts published there.',
    });
    Validations.of(provider).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        "aws-eks-v2 picks the kubectl handler's Python runtime for the handler code it ships; a newer one is not tested with it.",
    });
    Validations.of(provider).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::<ClusterKubectlProviderHandler2E05C68A.Arn>:*]',
      reason: 'The custom-resource framework invokes the kubectl handler, any version of that one function.',
    });
  }

  /** Tenant budgets are named `agent-platform-<env>-tenant-<id>` (tenants/tenant-aws.ts). */
  private tenantBudgetsArn(config: EnvironmentConfig): string {
    return `arn:${this.partition}:budgets::${config.account}:budget/${resourcePrefix(config)}-tenant-*`;
  }

  /** Tenant budgets, as onboarding, tier changes and resumes reconcile them; tenants get no database secret. */
  private addTenantReconcileStatements(role: iam.Role, workload: Workload, config: EnvironmentConfig): void {
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReconcileTenantBudgets',
        actions: listed(workload, 'budgets:ViewBudget', 'budgets:ModifyBudget', 'budgets:TagResource'),
        resources: [this.tenantBudgetsArn(config)],
      }),
    );
  }

  private tenantReconcileFindings(config: EnvironmentConfig): [string, string][] {
    return [
      [
        'Resource',
        `arn:<AWS::Partition>:budgets::${config.account}:budget/${resourcePrefix(config)}-tenant-*`,
      ],
    ];
  }

  /** Control plane: reconciles tenant budgets and secrets during onboarding (WORKLOAD_ACTIONS.controlPlane). */
  private controlPlaneRole(config: EnvironmentConfig): iam.Role {
    const role = podIdentityRole(this, 'ControlPlaneRole', 'Control plane workload');
    this.addTenantReconcileStatements(role, 'controlPlane', config);
    // The Health page's backup row: the platform instance and its automated snapshots (`rds:<id>-<time>`).
    const instance = databaseInstanceId(config);
    const rdsArn = (type: string, name: string) =>
      this.formatArn({
        service: 'rds',
        resource: type,
        resourceName: name,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadDatabaseBackups',
        actions: listed('controlPlane', 'rds:DescribeDBSnapshots'),
        resources: [rdsArn('db', instance), rdsArn('snapshot', `rds:${instance}-*`)],
      }),
    );
    acknowledgeWildcards(
      role,
      [
        ...this.tenantReconcileFindings(config),
        [
          'Resource',
          `arn:<AWS::Partition>:rds:${config.region}:${config.account}:snapshot:rds:${instance}-*`,
        ],
      ],
      {
        Resource:
          'Tenant budgets and secrets are created at run time, one per tenant, under the environment prefix; Secrets Manager appends a random suffix to secret ARNs. Automated snapshots of the platform database are named by RDS with their time.',
      },
    );
    return role;
  }

  /**
   * Cost guard and the daily cost report: read costs, publish to the KMS-encrypted alarm topic, e-mail the
   * report from its sender, and reconcile tenant budgets on resume (WORKLOAD_ACTIONS.costGuard).
   */
  private costGuardRole(config: EnvironmentConfig): iam.Role {
    const role = podIdentityRole(this, 'CostGuardRole', 'Cost guard CronJob');
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadCosts',
        actions: listed('costGuard', 'ce:GetCostAndUsage'),
        resources: ['*'],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PublishAlarms',
        actions: listed('costGuard', 'sns:Publish'),
        resources: [alarmTopicArn(config)],
      }),
    );
    // The topic key lives in the observability stack, which deploys after this one: the alias names it
    // without a cross-stack reference, and the via-service condition keeps the grant to SNS publishing.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptForTheAlarmTopic',
        actions: listed('costGuard', 'kms:GenerateDataKey*', 'kms:Decrypt'),
        resources: [this.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        conditions: {
          StringEquals: { 'kms:ViaService': `sns.${this.region}.amazonaws.com` },
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': `alias/${alarmTopicKeyAlias(config)}` },
        },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EmailTheCostReport',
        actions: listed('costGuard', 'ses:SendEmail'),
        resources: [this.formatArn({ service: 'ses', resource: 'identity', resourceName: config.domain })],
        conditions: { StringEquals: { 'ses:FromAddress': costReportSender(config) } },
      }),
    );
    this.addTenantReconcileStatements(role, 'costGuard', config);
    acknowledgeWildcards(
      role,
      [
        ['Resource', '*'],
        ['Resource', `arn:<AWS::Partition>:kms:${config.region}:${config.account}:key/*`],
        ['Action', 'Action::kms:GenerateDataKey*'],
        ...this.tenantReconcileFindings(config),
      ],
      {
        Resource:
          'ce:GetCostAndUsage has no resource-level permissions; the topic key is named by its alias and used only through SNS; tenant budgets and secrets are created at run time under the environment prefix.',
        Action:
          'SNS asks for GenerateDataKey with or without plaintext when it encrypts a message for a customer-managed key; the grant is limited to the alarm key through SNS.',
      },
    );
    return role;
  }

  /**
   * DR drills: fail over and snapshot the platform's tagged database, then restore, tag and delete only their own
   * copies, which runbooks/drills names `<prefix>-drill-*` and tags `dr-drill-env=<env>` (WORKLOAD_ACTIONS.drills).
   */
  private drillsRole(config: EnvironmentConfig): iam.Role {
    const role = podIdentityRole(this, 'DrillsRole', 'DR drills');
    const statements: iam.PolicyStatement[] = [];
    const arn = (service: string, type: string, name: string) =>
      this.formatArn({
        service,
        resource: type,
        resourceName: name,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    const drillPrefix = `${resourcePrefix(config)}-drill-`;
    const drillResources = [arn('rds', 'db', `${drillPrefix}*`), arn('rds', 'snapshot', `${drillPrefix}*`)];
    const drillEnv = (key: 'aws:ResourceTag' | 'aws:RequestTag') => ({
      StringEquals: { [`${key}/${DRILL_ENV_TAG}`]: config.name },
    });
    statements.push(
      new iam.PolicyStatement({
        sid: 'FailOverAndSnapshotThePlatformDatabase',
        actions: listed(
          'drills',
          'rds:RebootDBInstance',
          'rds:CreateDBSnapshot',
          'rds:RestoreDBInstanceToPointInTime',
        ),
        resources: [arn('rds', 'db', databaseInstanceId(config))],
        conditions: platformResourceTags(config, 'aws:ResourceTag'),
      }),
    );
    statements.push(
      new iam.PolicyStatement({
        sid: 'CreateTaggedDrillCopies',
        actions: listed(
          'drills',
          'rds:CreateDBSnapshot',
          'rds:RestoreDBInstanceFromDBSnapshot',
          'rds:RestoreDBInstanceToPointInTime',
          'rds:AddTagsToResource',
        ),
        resources: drillResources,
        conditions: drillEnv('aws:RequestTag'),
      }),
    );
    statements.push(
      new iam.PolicyStatement({
        sid: 'UseAndDeleteTaggedDrillCopies',
        actions: listed(
          'drills',
          'rds:RestoreDBInstanceFromDBSnapshot',
          'rds:DeleteDBInstance',
          'rds:DeleteDBSnapshot',
        ),
        resources: drillResources,
        conditions: drillEnv('aws:ResourceTag'),
      }),
    );
    statements.push(
      new iam.PolicyStatement({
        sid: 'PlaceRestoredCopies',
        actions: listed(
          'drills',
          'rds:RestoreDBInstanceFromDBSnapshot',
          'rds:RestoreDBInstanceToPointInTime',
        ),
        resources: [arn('rds', 'subgrp', '*'), arn('rds', 'pg', '*'), arn('rds', 'og', '*')],
      }),
    );
    statements.push(
      new iam.PolicyStatement({
        sid: 'FailOverThePlatformCache',
        actions: listed('drills', 'elasticache:TestFailover'),
        resources: [arn('elasticache', 'replicationgroup', cacheReplicationGroupId(config))],
        conditions: platformResourceTags(config, 'aws:ResourceTag'),
      }),
    );
    statements.push(
      new iam.PolicyStatement({
        sid: 'Describe',
        actions: listed(
          'drills',
          'rds:DescribeDBInstances',
          'rds:DescribeDBSnapshots',
          'elasticache:DescribeReplicationGroups',
        ),
        resources: ['*'],
      }),
    );
    for (const statement of statements) role.addToPolicy(statement);
    const arnFinding = (service: string, type: string, name: string) =>
      `arn:<AWS::Partition>:${service}:${config.region}:${config.account}:${type}:${name}`;
    const findings: [string, string][] = [
      ['Resource', '*'],
      ['Resource', arnFinding('rds', 'db', `${drillPrefix}*`)],
      ['Resource', arnFinding('rds', 'snapshot', `${drillPrefix}*`)],
      ['Resource', arnFinding('rds', 'subgrp', '*')],
      ['Resource', arnFinding('rds', 'pg', '*')],
      ['Resource', arnFinding('rds', 'og', '*')],
    ];
    const reasons = {
      Resource:
        'Drill copies get run-specific names under the drill prefix and must carry the dr-drill-env tag; restores read the source placement groups; Describe* has no resource-level permissions.',
    };
    acknowledgeWildcards(role, findings, reasons);
    this.drillAccessGrant = { statements, findings, reasons };
    return role;
  }

  /** What the drills may do, for another principal that runs them (the GitHub drill role, stacks/github.ts). */
  get drillAccess(): DrillAccess {
    if (!this.drillAccessGrant) throw new Error('the drills role is not built yet');
    return this.drillAccessGrant;
  }
}

/** Acknowledges each IAM5 finding of a role, with the reason for its kind. */
export function acknowledgeWildcards(
  role: iam.Role,
  findings: readonly (readonly [string, string])[],
  reasons: Partial<Record<'Resource' | 'Action', string>>,
): void {
  for (const [kind, value] of findings) {
    Validations.of(role).acknowledge({
      id: kind === 'Action' ? `AwsSolutions-IAM5[${value}]` : `AwsSolutions-IAM5[${kind}::${value}]`,
      reason: reasons[kind as 'Resource' | 'Action']!,
    });
  }
}

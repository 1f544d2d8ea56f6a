import { ArnFormat, CfnOutput, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { alarmTopicArn, type EnvironmentConfig } from '../config/environments.ts';
import {
  APP_NAME,
  cacheReplicationGroupId,
  clusterName,
  DRILL_ENV_TAG,
  databaseInstanceId,
  resourcePrefix,
  secretNames,
  WORKLOAD_IDENTITIES,
} from '../config/names.ts';
import { PlatformStack, type PlatformStackProps } from './platform-stack.ts';

export interface ClusterStackProps extends PlatformStackProps {
  /** The network stack's VPC; nodes go in its private-with-egress subnets. */
  readonly vpc: ec2.IVpc;
}

/** Managed add-ons installed instead of the self-managed bootstrap ones. */
export const CORE_ADDONS = ['vpc-cni', 'kube-proxy', 'coredns', 'eks-pod-identity-agent'] as const;

/** Container Insights add-on; it feeds the node-health alarms. */
export const OBSERVABILITY_ADDON = 'amazon-cloudwatch-observability';

/** Graviton families (m6g, c7g, r8g...) need the ARM AMI. */
export function amiTypeFor(instanceTypes: readonly string[]): eks.NodegroupAmiType {
  return instanceTypes.every((t) => /^[a-z]+\d+g[a-z]*\./.test(t))
    ? eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
    : eks.NodegroupAmiType.AL2023_X86_64_STANDARD;
}

/** A role that EKS Pod Identity lets one service account assume. */
function podIdentityRole(scope: Construct, id: string, description: string): iam.Role {
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
 * EKS on aws-eks-v2 with managed node groups. The v2 module talks to AWS::EKS::Cluster directly, so there is no
 * kubectl Lambda (and no kubectl layer) to deploy; access entries, add-ons and pod identities are all native.
 */
export class ClusterStack extends PlatformStack {
  readonly cluster: eks.Cluster;
  /** Roles of the platform workloads, by WORKLOAD_IDENTITIES key. */
  readonly workloadRoles: Record<keyof typeof WORKLOAD_IDENTITIES, iam.Role>;

  constructor(scope: Construct, id: string, props: ClusterStackProps) {
    super(scope, id, props);
    const { config } = this;

    const secretsKey = new kms.Key(this, 'SecretsKey', {
      description: `EKS secrets envelope encryption (${config.name})`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName: clusterName(config),
      version: eks.KubernetesVersion.of(config.cluster.kubernetesVersion),
      vpc: props.vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      // Operators and CI reach the API from inside the VPC (SSM or VPN); nothing is exposed publicly.
      endpointAccess: eks.EndpointAccess.PRIVATE,
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
    });
    Validations.of(this.cluster).acknowledge({
      id: 'CloudFormation-Validate::W9009',
      reason:
        "aws-eks-v2 renders EncryptionConfig Resources ['secrets'], the only value EKS accepts; the envelope key is what matters.",
    });
    Validations.of(this.cluster.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]',
      reason: 'EKS requires the AWS-managed AmazonEKSClusterPolicy on the cluster service role.',
    });

    for (const [i, roleArn] of config.cluster.adminRoleArns.entries()) {
      this.cluster.grantAccess(`Admin${i}`, roleArn, [
        eks.AccessPolicy.fromAccessPolicyName('AmazonEKSClusterAdminPolicy', {
          accessScopeType: eks.AccessScopeType.CLUSTER,
        }),
      ]);
    }

    const addons = new Map<string, eks.Addon>();
    for (const name of CORE_ADDONS) {
      addons.set(name, new eks.Addon(this, `Addon-${name}`, { cluster: this.cluster, addonName: name }));
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

  /** Control plane: reads the platform's secrets and manages tenant database secrets. */
  private controlPlaneRole(config: EnvironmentConfig): iam.Role {
    const role = podIdentityRole(this, 'ControlPlaneRole', 'Control plane workload');
    const names = secretNames(config);
    const secretArn = (name: string) =>
      this.formatArn({
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: name,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    const platformSecrets = [secretArn(`${names.databaseMaster}-*`), secretArn(`${names.cacheAuth}-*`)];
    const tenantSecrets = secretArn(`${names.tenantsPrefix}*`);
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadPlatformSecrets',
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: platformSecrets,
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ManageTenantSecrets',
        actions: [
          'secretsmanager:CreateSecret',
          'secretsmanager:PutSecretValue',
          'secretsmanager:GetSecretValue',
          'secretsmanager:DescribeSecret',
          'secretsmanager:TagResource',
          'secretsmanager:DeleteSecret',
        ],
        resources: [tenantSecrets],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptSecretsThroughSecretsManager',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [this.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        conditions: {
          StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` },
          'ForAnyValue:StringLike': { 'kms:ResourceAliases': `alias/${APP_NAME}-${config.name}-*` },
        },
      }),
    );
    this.acknowledgeWildcards(
      role,
      [
        [
          'Resource',
          `arn:<AWS::Partition>:secretsmanager:${config.region}:${config.account}:secret:${names.databaseMaster}-*`,
        ],
        [
          'Resource',
          `arn:<AWS::Partition>:secretsmanager:${config.region}:${config.account}:secret:${names.cacheAuth}-*`,
        ],
        [
          'Resource',
          `arn:<AWS::Partition>:secretsmanager:${config.region}:${config.account}:secret:${names.tenantsPrefix}*`,
        ],
        ['Resource', `arn:<AWS::Partition>:kms:${config.region}:${config.account}:key/*`],
      ],
      {
        Resource:
          'Secrets Manager appends a random suffix to secret ARNs and tenant secrets are created at run time under the tenants/ prefix; KMS use is limited to Secrets Manager and the platform key aliases by condition.',
      },
    );
    return role;
  }

  /** Cost guard: reads costs and budgets, and publishes to the alarm topic. */
  private costGuardRole(config: EnvironmentConfig): iam.Role {
    const role = podIdentityRole(this, 'CostGuardRole', 'Cost guard CronJob');
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadCosts',
        actions: ['ce:GetCostAndUsage'],
        resources: ['*'],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadBudgets',
        actions: ['budgets:ViewBudget'],
        resources: [`arn:${this.partition}:budgets::${config.account}:budget/*`],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PublishAlarms',
        actions: ['sns:Publish'],
        resources: [alarmTopicArn(config)],
      }),
    );
    this.acknowledgeWildcards(
      role,
      [
        ['Resource', '*'],
        ['Resource', `arn:<AWS::Partition>:budgets::${config.account}:budget/*`],
      ],
      {
        Resource:
          'ce:GetCostAndUsage has no resource-level permissions; budgets are read by name, and tenant budgets are created at run time.',
      },
    );
    return role;
  }

  /**
   * DR drills: fail over and snapshot the platform's tagged database, then restore, tag and delete only their own
   * copies, which runbooks/drills names `<prefix>-drill-*` and tags `dr-drill-env=<env>`.
   */
  private drillsRole(config: EnvironmentConfig): iam.Role {
    const role = podIdentityRole(this, 'DrillsRole', 'DR drills');
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
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'FailOverAndSnapshotThePlatformDatabase',
        actions: ['rds:RebootDBInstance', 'rds:CreateDBSnapshot', 'rds:RestoreDBInstanceToPointInTime'],
        resources: [arn('rds', 'db', databaseInstanceId(config))],
        conditions: platformResourceTags(config, 'aws:ResourceTag'),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CreateTaggedDrillCopies',
        actions: [
          'rds:CreateDBSnapshot',
          'rds:RestoreDBInstanceFromDBSnapshot',
          'rds:RestoreDBInstanceToPointInTime',
          'rds:AddTagsToResource',
        ],
        resources: drillResources,
        conditions: drillEnv('aws:RequestTag'),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'UseAndDeleteTaggedDrillCopies',
        actions: ['rds:RestoreDBInstanceFromDBSnapshot', 'rds:DeleteDBInstance', 'rds:DeleteDBSnapshot'],
        resources: drillResources,
        conditions: drillEnv('aws:ResourceTag'),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PlaceRestoredCopies',
        actions: ['rds:RestoreDBInstanceFromDBSnapshot', 'rds:RestoreDBInstanceToPointInTime'],
        resources: [arn('rds', 'subgrp', '*'), arn('rds', 'pg', '*'), arn('rds', 'og', '*')],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'FailOverThePlatformCache',
        actions: ['elasticache:TestFailover'],
        resources: [arn('elasticache', 'replicationgroup', cacheReplicationGroupId(config))],
        conditions: platformResourceTags(config, 'aws:ResourceTag'),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Describe',
        actions: [
          'rds:DescribeDBInstances',
          'rds:DescribeDBSnapshots',
          'rds:DescribeEvents',
          'rds:ListTagsForResource',
          'elasticache:DescribeReplicationGroups',
        ],
        resources: ['*'],
      }),
    );
    const arnFinding = (service: string, type: string, name: string) =>
      `arn:<AWS::Partition>:${service}:${config.region}:${config.account}:${type}:${name}`;
    this.acknowledgeWildcards(
      role,
      [
        ['Resource', '*'],
        ['Resource', arnFinding('rds', 'db', `${drillPrefix}*`)],
        ['Resource', arnFinding('rds', 'snapshot', `${drillPrefix}*`)],
        ['Resource', arnFinding('rds', 'subgrp', '*')],
        ['Resource', arnFinding('rds', 'pg', '*')],
        ['Resource', arnFinding('rds', 'og', '*')],
      ],
      {
        Resource:
          'Drill copies get run-specific names under the drill prefix and must carry the dr-drill-env tag; restores read the source placement groups; Describe* has no resource-level permissions.',
      },
    );
    return role;
  }

  private acknowledgeWildcards(
    role: iam.Role,
    findings: readonly (readonly ['Resource' | 'Action', string])[],
    reasons: Partial<Record<'Resource' | 'Action', string>>,
  ): void {
    for (const [kind, value] of findings) {
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[${kind}::${value}]`,
        reason: reasons[kind]!,
      });
    }
  }
}

import { CfnOutput, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { cacheReplicationGroupId, resourcePrefix, secretNames } from '../config/names.ts';
import {
  clusterClientSecurityGroup,
  dataStoreRemovalPolicy,
  logRemovalPolicy,
  PlatformStack,
  type PlatformStackProps,
} from './platform-stack.ts';
import { logRetention } from './retention.ts';

export const CACHE_PORT = 6379;

export interface CacheStackProps extends PlatformStackProps {
  readonly vpc: ec2.IVpc;
}

/** Redis replication group (rate limiter, admission counters): one primary and replicas across AZs. */
export class CacheStack extends PlatformStack {
  readonly replicationGroup: elasticache.CfnReplicationGroup;
  readonly authToken: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: CacheStackProps) {
    super(scope, id, props);
    const { config } = this;
    // The EKS cluster security group: the only client the store (and its proxy) admits.
    const clients = clusterClientSecurityGroup(this);

    const key = new kms.Key(this, 'Key', {
      alias: `${resourcePrefix(config)}-cache`,
      description: `ElastiCache at-rest encryption, AUTH token and logs (${config.name})`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`));

    this.authToken = new secretsmanager.Secret(this, 'AuthToken', {
      secretName: secretNames(config).cacheAuth,
      description: 'Redis AUTH token',
      encryptionKey: key,
      // AUTH tokens allow printable ASCII except @, " and /; 64 characters is within 16..128.
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    Validations.of(this.authToken).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'ElastiCache AUTH tokens rotate through ModifyReplicationGroup (AuthTokenUpdateStrategy ROTATE then SET); Secrets Manager has no rotation function for them, so rotation is an operator step.',
    });

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Redis: admits the EKS cluster only',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(clients, ec2.Port.tcp(CACHE_PORT), 'EKS cluster');

    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'SubnetGroup', {
      description: `agent platform ${config.name} cache`,
      subnetIds: props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds,
    });

    const slowLog = new logs.LogGroup(this, 'SlowLog', {
      retention: logRetention(config.observability.logRetentionDays, 'observability.logRetentionDays'),
      encryptionKey: key,
      removalPolicy: logRemovalPolicy(this.config),
    });

    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'ReplicationGroup', {
      replicationGroupId: cacheReplicationGroupId(config),
      replicationGroupDescription: `agent platform ${config.name}`,
      engine: 'redis',
      engineVersion: config.cache.engineVersion,
      cacheNodeType: config.cache.nodeType,
      numCacheClusters: config.cache.nodeCount,
      multiAzEnabled: true,
      automaticFailoverEnabled: true,
      atRestEncryptionEnabled: true,
      kmsKeyId: key.keyArn,
      transitEncryptionEnabled: true,
      authToken: this.authToken.secretValue.unsafeUnwrap(),
      port: CACHE_PORT,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [securityGroup.securityGroupId],
      snapshotRetentionLimit: config.cache.snapshotRetentionDays,
      autoMinorVersionUpgrade: true,
      logDeliveryConfigurations: [
        {
          destinationType: 'cloudwatch-logs',
          logFormat: 'json',
          logType: 'slow-log',
          destinationDetails: { cloudWatchLogsDetails: { logGroup: slowLog.logGroupName } },
        },
      ],
    });
    this.replicationGroup.applyRemovalPolicy(dataStoreRemovalPolicy(config));
    new CfnOutput(this, 'PrimaryEndpoint', {
      value: this.replicationGroup.attrPrimaryEndPointAddress,
      description: `rediss://<host>:${CACHE_PORT} with the AUTH token`,
    });
    new CfnOutput(this, 'AuthTokenSecretName', { value: secretNames(config).cacheAuth });
    Validations.of(this.replicationGroup).acknowledge({
      id: 'AwsSolutions-AEC5',
      reason:
        'The default port is kept so runbook commands work as written; only the cluster security group can reach it, and AUTH plus TLS are required.',
    });
  }
}

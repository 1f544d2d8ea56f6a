import {
  ArnFormat,
  CfnOutput,
  type CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Validations,
} from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type { Construct } from 'constructs';
import { ConfigError, type EnvironmentConfig } from '../config/environments.ts';
import {
  clusterName,
  DATABASE_TOPOLOGY,
  databaseInstanceId,
  resourcePrefix,
  secretNames,
  TENANT_DATABASE_SERVICE_ACCOUNT,
  tenantDatabaseRoleName,
} from '../config/names.ts';
import {
  clusterClientSecurityGroup,
  dataStoreRemovalPolicy,
  logRemovalPolicy,
  PlatformStack,
  type PlatformStackProps,
} from './platform-stack.ts';
import { logRetention } from './retention.ts';

/**
 * A Multi-AZ DB *instance* (one primary, one synchronous standby), not a Multi-AZ DB cluster, because:
 * RDS Proxy does not support Multi-AZ DB clusters; DB clusters need instance classes with local NVMe (no t4g
 * for dev, no m6g.large); and CDK has no L2 for them. Failover is exercised with RebootDBInstance(ForceFailover).
 * The DR drills read this constant to choose that call.
 */
export { DATABASE_TOPOLOGY };

export const DATABASE_PORT = 5432;

/** Statements slower than this are logged (log_min_duration_statement, ms). */
export const SLOW_STATEMENT_MS = 500;

/** The master user; tenant roles are created by the provisioner, never by hand. */
export const DATABASE_MASTER_USER = 'platform_admin';

export interface DataStackProps extends PlatformStackProps {
  readonly vpc: ec2.IVpc;
}

/** Namespaces that are never tenants; their pods may not take the tenant database role. */
export const PLATFORM_NAMESPACES = ['platform', 'kube-system', 'default'] as const;

/** Trust conditions on the Pod Identity session tags (EKS adds them when it assumes the role). */
export function tenantTrustConditions(config: EnvironmentConfig) {
  return {
    StringEquals: {
      'aws:RequestTag/eks-cluster-name': clusterName(config),
      'aws:RequestTag/kubernetes-service-account': TENANT_DATABASE_SERVICE_ACCOUNT,
    },
    StringNotEquals: { 'aws:RequestTag/kubernetes-namespace': [...PLATFORM_NAMESPACES] },
  };
}

function performanceInsightsRetention(days: number): rds.PerformanceInsightRetention {
  const allowed = Object.values(rds.PerformanceInsightRetention).filter((v) => typeof v === 'number');
  if (!allowed.includes(days)) {
    throw new ConfigError(
      `'database.performanceInsightsRetentionDays' (${days}) must be 7, a multiple of 31 up to 713, or 731`,
    );
  }
  return days as rds.PerformanceInsightRetention;
}

/** Shared PostgreSQL (catalog plus one schema per tenant), its proxy and its master secret. */
export class DataStack extends PlatformStack {
  readonly instance: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;
  readonly key: kms.Key;
  /** The shared Pod Identity role of tenant namespaces (tenantDatabaseRoleName). */
  readonly tenantDatabaseRole: iam.Role;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { config } = this;
    // The EKS cluster security group: the only client the store (and its proxy) admits.
    const clients = clusterClientSecurityGroup(this);
    const db = config.database;
    const instanceId = databaseInstanceId(config);
    const isolated = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

    this.key = new kms.Key(this, 'Key', {
      alias: `${resourcePrefix(config)}-data`,
      description: `RDS storage, Performance Insights, master secret and logs (${config.name})`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.key.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`));

    const engine = rds.DatabaseInstanceEngine.postgres({
      version: rds.PostgresEngineVersion.of(db.engineVersion, db.engineVersion.split('.')[0]!),
    });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      description: `agent platform ${config.name}`,
      parameters: {
        'rds.force_ssl': '1',
        log_min_duration_statement: String(SLOW_STATEMENT_MS),
        log_lock_waits: '1',
      },
    });

    const securityGroup = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: props.vpc,
      description: 'PostgreSQL: admits the EKS cluster, the RDS Proxy and the rotation function',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(clients, ec2.Port.tcp(DATABASE_PORT), 'EKS cluster');

    // RDS writes exported logs here; creating the groups ourselves sets retention and encryption without a Lambda.
    const logGroups = ['postgresql', 'upgrade'].map(
      (type) =>
        new logs.LogGroup(this, `Logs-${type}`, {
          logGroupName: `/aws/rds/instance/${instanceId}/${type}`,
          retention: logRetention(config.observability.logRetentionDays, 'observability.logRetentionDays'),
          encryptionKey: this.key,
          removalPolicy: logRemovalPolicy(this.config),
        }),
    );

    const masterSecret = new rds.DatabaseSecret(this, 'MasterSecret', {
      username: DATABASE_MASTER_USER,
      secretName: secretNames(config).databaseMaster,
      encryptionKey: this.key,
    });
    // A snapshot without its master password is a puzzle: keep the secret wherever snapshots are kept.
    masterSecret.applyRemovalPolicy(
      dataStoreRemovalPolicy(config) === RemovalPolicy.SNAPSHOT
        ? RemovalPolicy.RETAIN
        : RemovalPolicy.DESTROY,
    );

    this.instance = new rds.DatabaseInstance(this, 'Database', {
      instanceIdentifier: instanceId,
      engine,
      instanceType: new ec2.InstanceType(db.instanceClass),
      vpc: props.vpc,
      vpcSubnets: isolated,
      securityGroups: [securityGroup],
      port: DATABASE_PORT,
      multiAz: true,
      credentials: rds.Credentials.fromSecret(masterSecret),
      storageEncrypted: true,
      storageEncryptionKey: this.key,
      storageType: rds.StorageType.GP3,
      allocatedStorage: db.allocatedStorageGiB,
      maxAllocatedStorage: db.maxAllocatedStorageGiB,
      backupRetention: Duration.days(db.backupRetentionDays),
      deleteAutomatedBackups: false,
      copyTagsToSnapshot: true,
      deletionProtection: db.deletionProtection,
      removalPolicy: dataStoreRemovalPolicy(config),
      parameterGroup,
      iamAuthentication: true,
      enablePerformanceInsights: true,
      performanceInsightRetention: performanceInsightsRetention(db.performanceInsightsRetentionDays),
      performanceInsightEncryptionKey: this.key,
      monitoringInterval: Duration.seconds(db.monitoringIntervalSeconds),
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      autoMinorVersionUpgrade: true,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
    });
    // Only the DB resource waits for its log groups (a construct-level dependency would drag in the proxy role).
    for (const group of logGroups) {
      (this.instance.node.defaultChild as CfnResource).addResourceDependency(
        group.node.defaultChild as CfnResource,
      );
    }

    this.instance.addRotationSingleUser({
      automaticallyAfter: Duration.days(db.secretRotationDays),
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });

    const proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySecurityGroup', {
      vpc: props.vpc,
      description: 'RDS Proxy: admits the EKS cluster',
      allowAllOutbound: false,
    });
    proxySecurityGroup.addIngressRule(clients, ec2.Port.tcp(DATABASE_PORT), 'EKS cluster');
    proxySecurityGroup.addEgressRule(securityGroup, ec2.Port.tcp(DATABASE_PORT), 'PostgreSQL');
    securityGroup.addIngressRule(proxySecurityGroup, ec2.Port.tcp(DATABASE_PORT), 'RDS Proxy');

    // End-to-end IAM authentication: clients present an IAM token to the proxy, and the proxy logs in to
    // PostgreSQL with IAM as the same user, so no tenant has a secret or password (stacks/README.md).
    const proxyRole = new iam.Role(this, 'ProxyRole', {
      description: `RDS Proxy: IAM logins to the database as any rds_iam user (${config.name})`,
      assumedBy: new iam.ServicePrincipal('rds.amazonaws.com'),
    });
    const instanceResource = this.instance.node.defaultChild as rds.CfnDBInstance;
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ConnectAsDatabaseUsers',
        actions: ['rds-db:connect'],
        resources: [
          this.formatArn({
            service: 'rds-db',
            resource: 'dbuser',
            resourceName: `${instanceResource.attrDbiResourceId}/*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    Validations.of(proxyRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds-db:${config.region}:${config.account}:dbuser:<${this.getLogicalId(instanceResource)}.DbiResourceId>/*]`,
      reason:
        'Tenant roles are created at run time, one per tenant; the proxy must log in as each of them, and only roles granted rds_iam accept an IAM login.',
    });
    this.proxy = this.instance.addProxy('Proxy', {
      dbProxyName: `${resourcePrefix(config)}-proxy`,
      defaultAuthScheme: rds.DefaultAuthScheme.IAM_AUTH,
      role: proxyRole,
      vpc: props.vpc,
      vpcSubnets: isolated,
      securityGroups: [proxySecurityGroup],
      requireTLS: true,
    });
    this.tenantDatabaseRole = this.createTenantDatabaseRole(config);

    new CfnOutput(this, 'ProxyEndpoint', {
      value: this.proxy.endpoint,
      description: 'Clients connect here (TLS)',
    });
    new CfnOutput(this, 'MasterSecretName', { value: secretNames(config).databaseMaster });

    this.acknowledge(db.deletionProtection);
  }

  /**
   * One role for every tenant namespace, assumed through EKS Pod Identity. Pod Identity tags the session with
   * the pod's namespace, and the policy lets the session connect through the proxy only as the database user
   * of that name, which is the tenant's role: one policy serves any number of tenants.
   */
  private createTenantDatabaseRole(config: EnvironmentConfig): iam.Role {
    // Only the tenant service account of this cluster, and never a platform namespace, may take the role.
    const conditions = tenantTrustConditions(config);
    const podIdentity = new iam.ServicePrincipal('pods.eks.amazonaws.com');
    const role = new iam.Role(this, 'TenantDatabaseRole', {
      roleName: tenantDatabaseRoleName(config),
      description: 'Tenant workloads: connect through RDS Proxy as their own namespace role',
      assumedBy: new iam.PrincipalWithConditions(podIdentity, conditions),
    });
    role.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({ actions: ['sts:TagSession'], principals: [podIdentity], conditions }),
    );
    const proxyResourceId = Fn.select(6, Fn.split(':', this.proxy.dbProxyArn));
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ConnectAsOwnNamespaceRole',
        actions: ['rds-db:connect'],
        resources: [
          this.formatArn({
            service: 'rds-db',
            resource: 'dbuser',
            resourceName: `${proxyResourceId}/\${aws:PrincipalTag/kubernetes-namespace}`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    new CfnOutput(this, 'TenantDatabaseRoleArn', {
      value: role.roleArn,
      description: `Pod Identity role for <tenant>/${TENANT_DATABASE_SERVICE_ACCOUNT}`,
    });
    return role;
  }

  private acknowledge(deletionProtection: boolean): void {
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]',
      reason: 'Enhanced monitoring requires the AWS-managed AmazonRDSEnhancedMonitoringRole on its role.',
    });
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason:
        'The default port is kept so runbook commands work as written; only the cluster, proxy and rotation security groups can reach it, and TLS is forced.',
    });
    if (!deletionProtection) {
      Validations.of(this.instance).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason: `${this.config.name} sets database.deletionProtection=false so the environment can be torn down; prod keeps it on.`,
      });
    }
  }
}

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { LoadBalancerTarget } from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ConfigError, type EnvironmentConfig } from '../config/environments.ts';
import { resourcePrefix } from '../config/names.ts';
import { INGRESS_SOURCE } from '../constructs/ingress-source.ts';
import {
  CONTROL_PLANE_NAME,
  CONTROL_PLANE_PORT,
  PLATFORM_NAMESPACE,
  renderPlatformWorkloads,
} from '../constructs/platform-workloads.ts';
import { eksWorkloadsProps } from '../constructs/workloads-synth.ts';
import { acknowledgeWildcards, amiTypeFor, podIdentityRole } from './cluster.ts';
import { LB_CONTROLLER, lbControllerPolicyJson } from './lb-controller-policy.ts';
import { clusterClientSecurityGroup, PlatformStack, type PlatformStackProps } from './platform-stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface WorkloadsStackProps extends PlatformStackProps {
  /** The network stack's VPC: the load balancer goes in its public subnets. */
  readonly vpc: ec2.IVpc;
  /** The cluster stack's cluster, built with a kubectl provider. */
  readonly cluster: eks.Cluster;
}

/** Hosts of one environment: every tenant under the wildcard, operators on api. */
export function platformHosts(config: EnvironmentConfig): { tenants: string; api: string } {
  return { tenants: `*.app.${config.domain}`, api: `api.${config.domain}` };
}

/** The image's CPU architecture follows the node groups'; a mixed cluster could not run one image. */
function imagePlatform(config: EnvironmentConfig): Platform {
  const arm = config.cluster.nodeGroups.map(
    (g) => amiTypeFor(g.instanceTypes) === eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
  );
  if (arm.some(Boolean) && !arm.every(Boolean)) {
    throw new ConfigError(
      `'cluster.nodeGroups' (${config.cluster.nodeGroups.map((g) => g.name).join(', ')}) mix ARM and x86 instance types: the platform image is built for one`,
    );
  }
  return arm[0] ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64;
}

/**
 * What runs on the cluster and how tenants reach it: the platform image (built from the root Dockerfile into the
 * bootstrap ECR repository at deploy time; synth only hashes the build context), the platform chart and the
 * AWS Load Balancer Controller applied through the cluster's kubectl handler, and tenant DNS and TLS.
 *
 * Traffic: `*.app.<domain>` and `api.<domain>` are alias records of one ALB that this stack owns, with the wildcard
 * certificate on its HTTPS listener. The controller only keeps the pods registered in the ALB's target group
 * (a TargetGroupBinding, IP targets), so a new tenant needs no DNS record, certificate or Ingress change.
 */
export class WorkloadsStack extends PlatformStack {
  readonly zone: route53.IHostedZone;
  readonly certificate: acm.Certificate;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly image: DockerImageAsset;

  constructor(scope: Construct, id: string, props: WorkloadsStackProps) {
    super(scope, id, props);
    const { config } = this;
    const { cluster, vpc } = props;
    const hosts = platformHosts(config);

    this.zone =
      config.hostedZoneId === undefined
        ? new route53.PublicHostedZone(this, 'Zone', {
            zoneName: config.domain,
            comment: `agent-platform ${config.name}: tenant and operator hosts`,
          })
        : route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', {
            hostedZoneId: config.hostedZoneId,
            zoneName: config.domain,
          });
    this.certificate = new acm.Certificate(this, 'Certificate', {
      domainName: hosts.tenants,
      subjectAlternativeNames: [hosts.api],
      validation: acm.CertificateValidation.fromDns(this.zone),
    });

    this.image = new DockerImageAsset(this, 'Image', {
      directory: ROOT,
      platform: imagePlatform(config),
      displayName: `${resourcePrefix(config)} platform image`,
    });

    this.loadBalancer = this.publicLoadBalancer(vpc);
    const targets = new elbv2.ApplicationTargetGroup(this, 'ControlPlaneTargets', {
      vpc,
      targetType: elbv2.TargetType.IP,
      protocol: elbv2.ApplicationProtocol.HTTP,
      port: CONTROL_PLANE_PORT,
      deregistrationDelay: Duration.seconds(30),
      healthCheck: { path: '/healthz', healthyHttpCodes: '200', interval: Duration.seconds(10) },
    });
    this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [this.certificate],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      defaultTargetGroups: [targets],
      open: false,
    });
    for (const [recordId, recordName] of [
      ['TenantsAlias', hosts.tenants],
      ['ApiAlias', hosts.api],
    ] as const) {
      new route53.ARecord(this, recordId, {
        zone: this.zone,
        recordName,
        target: route53.RecordTarget.fromAlias(new LoadBalancerTarget(this.loadBalancer)),
      });
    }

    const controller = this.loadBalancerController(cluster, vpc);
    const workloads = new eks.KubernetesManifest(this, 'PlatformWorkloads', {
      cluster,
      manifest: renderPlatformWorkloads(eksWorkloadsProps(config, this.image.imageUri)),
    });
    const binding = new eks.KubernetesManifest(this, 'ControlPlaneTargetGroupBinding', {
      cluster,
      manifest: [
        {
          apiVersion: 'elbv2.k8s.aws/v1beta1',
          kind: 'TargetGroupBinding',
          metadata: {
            name: CONTROL_PLANE_NAME,
            namespace: PLATFORM_NAMESPACE,
            labels: { 'app.kubernetes.io/part-of': 'agent-platform' },
          },
          spec: {
            serviceRef: { name: CONTROL_PLANE_NAME, port: 'http' },
            targetGroupARN: targets.targetGroupArn,
            targetType: INGRESS_SOURCE.targetType,
          },
        },
      ],
    });
    // The binding's kind comes with the controller's chart, and it points at the chart's Service.
    binding.node.addDependency(controller, workloads);

    new CfnOutput(this, 'ImageUri', { value: this.image.imageUri, description: 'platform image' });
    new CfnOutput(this, 'ApiUrl', { value: `https://${hosts.api}`, description: 'operator API' });
    if (config.hostedZoneId === undefined) {
      new CfnOutput(this, 'NameServers', {
        value: Fn.join(', ', (this.zone as route53.PublicHostedZone).hostedZoneNameServers!),
        description: `delegate ${config.domain} to these from its parent zone`,
      });
    }
  }

  /** An internet-facing ALB in the public subnets (INGRESS_SOURCE), HTTPS only, with access logs. */
  private publicLoadBalancer(vpc: ec2.IVpc): elbv2.ApplicationLoadBalancer {
    const { config } = this;
    const logs = new s3.Bucket(this, 'LoadBalancerLogs', {
      // ALB access logs support SSE-S3 only (no KMS).
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(config.observability.logRetentionDays) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket holds the load balancer access logs; logging its own reads to another bucket adds a bucket and no audit value.',
    });
    const group = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc,
      description: 'Tenant and operator HTTPS to the platform ALB; out only to the control plane pods',
      allowAllOutbound: false,
    });
    group.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS from tenants and operators');
    Validations.of(group).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'The ALB is the public entry of every tenant ({tenant}.app.<domain>); it listens on 443 only, with TLS 1.2+.',
    });
    // Managed node groups run pods in the cluster security group; the ALB reaches them on the container port.
    const pods = clusterClientSecurityGroup(this);
    group.addEgressRule(pods, ec2.Port.tcp(CONTROL_PLANE_PORT), 'to the control plane pods');
    new ec2.CfnSecurityGroupIngress(this, 'PodsFromLoadBalancer', {
      groupId: pods.securityGroupId,
      sourceSecurityGroupId: group.securityGroupId,
      ipProtocol: 'tcp',
      fromPort: CONTROL_PLANE_PORT,
      toPort: CONTROL_PLANE_PORT,
      description: 'platform ALB to the control plane pods (IP targets)',
    });
    const alb = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: INGRESS_SOURCE.scheme === 'internet-facing',
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: group,
      loadBalancerName: resourcePrefix(config),
      dropInvalidHeaderFields: true,
      deletionProtection: config.name === 'prod',
    });
    alb.logAccessLogs(logs, 'alb');
    return alb;
  }

  /**
   * The AWS Load Balancer Controller from its eks-charts chart, with the documented policy through EKS Pod Identity.
   * Here it only registers pod IPs in the ALB's target group; it creates no load balancer of its own.
   */
  private loadBalancerController(cluster: eks.Cluster, vpc: ec2.IVpc): eks.HelmChart {
    const role = podIdentityRole(this, 'LoadBalancerControllerRole', 'AWS Load Balancer Controller');
    for (const statement of lbControllerPolicyJson(this.partition)) {
      role.addToPolicy(iam.PolicyStatement.fromJson(statement));
    }
    acknowledgeWildcards(
      role,
      [
        ['Resource', '*'],
        ['Resource', 'arn:<AWS::Partition>:ec2:*:*:security-group/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:targetgroup/*/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/net/*/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/app/*/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/net/*/*/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/app/*/*/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/net/*/*/*'],
        ['Resource', 'arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/app/*/*/*'],
      ],
      {
        Resource: `The controller's published policy (${LB_CONTROLLER.version}, stacks/lb-controller-policy.ts): its mutating actions are conditioned on the elbv2.k8s.aws/cluster tag it puts on what it creates; load balancer and target group ARNs carry generated ids.`,
      },
    );
    const association = new eks.CfnPodIdentityAssociation(this, 'LoadBalancerControllerIdentity', {
      clusterName: cluster.clusterName,
      namespace: LB_CONTROLLER.namespace,
      serviceAccount: LB_CONTROLLER.serviceAccount,
      roleArn: role.roleArn,
    });
    const chart = new eks.HelmChart(this, 'LoadBalancerController', {
      cluster,
      chart: LB_CONTROLLER.chart,
      repository: LB_CONTROLLER.repository,
      version: LB_CONTROLLER.chartVersion,
      release: LB_CONTROLLER.chart,
      namespace: LB_CONTROLLER.namespace,
      createNamespace: false,
      wait: true,
      timeout: Duration.minutes(10),
      values: {
        clusterName: cluster.clusterName,
        // Given, so that the controller never asks the instance metadata service for them.
        region: this.region,
        vpcId: vpc.vpcId,
        replicaCount: 2,
        // Pod Identity needs no role annotation on the service account.
        serviceAccount: { create: true, name: LB_CONTROLLER.serviceAccount },
      },
    });
    chart.node.addDependency(association);
    return chart;
  }
}

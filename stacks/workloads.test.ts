import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName, loadEnvironmentConfig } from '../config/environments.ts';
import { loadBalancerSourceCidr } from '../constructs/ingress-source.ts';
import {
  CONTROL_PLANE_NAME,
  DB_WATCHDOG_NAME,
  renderPlatformWorkloads,
} from '../constructs/platform-workloads.ts';
import { eksWorkloadsProps } from '../constructs/workloads-synth.ts';
import { ClusterStack, checkKubectlSkew } from './cluster.ts';
import { LB_CONTROLLER, lbControllerPolicyJson } from './lb-controller-policy.ts';
import { NetworkStack } from './network.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';
import { WorkloadsStack } from './workloads.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

// Manifests are loosely typed JSON; the assertions check their shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Json = Record<string, any>;

/**
 * A custom resource's Manifest property as objects: `Fn::Sub` strings stay as written, other CloudFormation values
 * (Ref, GetAtt...) become `<cfn>`.
 */
function manifestOf(property: unknown): Json[] {
  const text =
    typeof property === 'string'
      ? property
      : ((property as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1] ?? [])
          .map((part) => {
            if (typeof part === 'string') return part;
            const sub = (part as { 'Fn::Sub'?: unknown })['Fn::Sub'];
            return typeof sub === 'string' ? sub : '<cfn>';
          })
          .join('');
  return JSON.parse(text) as Json[];
}

/** The one resource of a type whose properties match, with its logical id. */
function only(template: Template, type: string, props: Record<string, unknown> = {}): [string, Json] {
  const found = Object.entries(template.findResources(type, { Properties: props }));
  expect(found.map(([id]) => id)).toHaveLength(1);
  return found[0] as [string, Json];
}

describe.each(ENVIRONMENT_NAMES)('workloads stack in %s', (env) => {
  const config = fixtureConfig(env);
  const workloads = () => templateOf(synth[env], 'Workloads');

  test('creates the hosted zone of the domain when the config names none', () => {
    expect(config.hostedZoneId).toBeUndefined();
    workloads().hasResourceProperties('AWS::Route53::HostedZone', { Name: `${config.domain}.` });
  });

  test('one certificate covers every tenant and the operators, validated by DNS in that zone', () => {
    const [zoneId] = only(workloads(), 'AWS::Route53::HostedZone');
    workloads().hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: `*.app.${config.domain}`,
      SubjectAlternativeNames: [`api.${config.domain}`],
      ValidationMethod: 'DNS',
      DomainValidationOptions: Match.arrayWith([
        { DomainName: `*.app.${config.domain}`, HostedZoneId: { Ref: zoneId } },
        { DomainName: `api.${config.domain}`, HostedZoneId: { Ref: zoneId } },
      ]),
    });
  });

  test('the wildcard and api names are alias records of the stack-owned, internet-facing ALB', () => {
    const [albId] = only(workloads(), 'AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Type: 'application',
    });
    for (const name of [`*.app.${config.domain}.`, `api.${config.domain}.`]) {
      workloads().hasResourceProperties('AWS::Route53::RecordSet', {
        Name: name,
        Type: 'A',
        AliasTarget: {
          DNSName: { 'Fn::Join': ['', ['dualstack.', { 'Fn::GetAtt': [albId, 'DNSName'] }]] },
          HostedZoneId: { 'Fn::GetAtt': [albId, 'CanonicalHostedZoneID'] },
        },
      });
    }
    expect(Object.keys(workloads().findResources('AWS::Route53::RecordSet'))).toHaveLength(2);
  });

  test('the ALB sits in the public subnets, logs its requests, and serves HTTPS only with the certificate', () => {
    const [, alb] = only(workloads(), 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const attributes = Object.fromEntries(
      (alb.Properties.LoadBalancerAttributes as { Key: string; Value: string }[]).map((a) => [
        a.Key,
        a.Value,
      ]),
    );
    expect(attributes).toMatchObject({
      'access_logs.s3.enabled': 'true',
      'routing.http.drop_invalid_header_fields.enabled': 'true',
      'deletion_protection.enabled': String(env === 'prod'),
    });
    expect(JSON.stringify(alb.Properties.Subnets)).toMatch(/Vpcpublic.*Vpcpublic/);
    const [certId] = only(workloads(), 'AWS::CertificateManager::Certificate');
    const listeners = workloads().findResources('AWS::ElasticLoadBalancingV2::Listener');
    expect(Object.values(listeners).map((l) => [l.Properties.Port, l.Properties.Protocol])).toEqual([
      [443, 'HTTPS'],
    ]);
    workloads().hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Certificates: [{ CertificateArn: { Ref: certId } }],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
    });
  });

  test('the target group takes pod IPs on the control plane port, health-checked on /healthz', () => {
    workloads().hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'ip',
      Port: 8080,
      Protocol: 'HTTP',
      HealthCheckPath: '/healthz',
    });
    const [albGroup] = only(workloads(), 'AWS::EC2::SecurityGroup');
    workloads().hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      SourceSecurityGroupId: { 'Fn::GetAtt': [albGroup, 'GroupId'] },
      FromPort: 8080,
      ToPort: 8080,
      IpProtocol: 'tcp',
    });
  });

  test('the load balancer controller gets its documented policy through a Pod Identity association', () => {
    const [roleId, role] = only(workloads(), 'AWS::IAM::Role');
    expect(JSON.stringify(role.Properties.AssumeRolePolicyDocument)).toContain('pods.eks.amazonaws.com');
    workloads().hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
      Namespace: 'kube-system',
      ServiceAccount: 'aws-load-balancer-controller',
      RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] },
    });
    const [, policy] = only(workloads(), 'AWS::IAM::Policy');
    const granted = (policy.Properties.PolicyDocument.Statement as Json[]).flatMap((s) =>
      Array.isArray(s.Action) ? s.Action : [s.Action],
    );
    const documented = lbControllerPolicyJson('aws').flatMap((s) => s.Action as string[]);
    expect(new Set(granted)).toEqual(new Set(documented));
  });

  test('the controller comes from its pinned eks-charts release, told the cluster, region and VPC', () => {
    const [, chart] = only(workloads(), 'Custom::AWSCDK-EKS-HelmChart');
    expect(chart.Properties).toMatchObject({
      Chart: LB_CONTROLLER.chart,
      Repository: LB_CONTROLLER.repository,
      Version: LB_CONTROLLER.chartVersion,
      Namespace: 'kube-system',
      Wait: true,
    });
    expect(JSON.stringify(chart.Properties.Values)).toMatch(/clusterName.*region.*vpcId/);
    expect(chart.DependsOn).toEqual(expect.arrayContaining(['LoadBalancerControllerIdentity']));
  });

  test('the template deploys every platform manifest, with the built image and the ALB subnets as trusted proxy', () => {
    const resources = workloads().findResources('Custom::AWSCDK-EKS-KubernetesResource');
    const deployed = Object.values(resources).flatMap((r) => manifestOf(r.Properties.Manifest));
    const expected = renderPlatformWorkloads(eksWorkloadsProps(config, 'image'));
    const key = (m: Json) => `${m.kind}/${m.metadata.name}`;
    expect(deployed.map(key)).toEqual([...expected.map(key), `TargetGroupBinding/${CONTROL_PLANE_NAME}`]);

    const assets = JSON.parse(
      readFileSync(
        synth[env].stacks
          .find((s) => s.stackName.endsWith('-Workloads'))!
          .templateFile.replace('.template.json', '.assets.json'),
        'utf8',
      ),
    ) as { dockerImages: Record<string, unknown> };
    const [imageHash] = Object.keys(assets.dockerImages);
    const controlPlane = deployed.find(
      (m) => m.kind === 'Deployment' && m.metadata.name === CONTROL_PLANE_NAME,
    )!;
    const container = controlPlane.spec.template.spec.containers[0];
    expect(container.image).toMatch(new RegExp(`container-assets-.*:${imageHash}$`));
    expect(container.env).toContainEqual({
      name: 'TRUST_PROXY',
      value: loadBalancerSourceCidr(config.network.cidr),
    });
    expect(deployed.some((m) => m.kind === 'Deployment' && m.metadata.name === DB_WATCHDOG_NAME)).toBe(true);
  });

  test('the TargetGroupBinding ties the Service to the ALB target group, after the controller and the chart', () => {
    const [groupId] = only(workloads(), 'AWS::ElasticLoadBalancingV2::TargetGroup');
    const [, chartResource] = only(workloads(), 'Custom::AWSCDK-EKS-HelmChart');
    const bindings = Object.entries(
      workloads().findResources('Custom::AWSCDK-EKS-KubernetesResource'),
    ).filter(([id]) => id.startsWith('ControlPlaneTargetGroupBinding'));
    expect(bindings).toHaveLength(1);
    const [, binding] = bindings[0]!;
    expect(JSON.stringify(binding.Properties.Manifest)).toContain(JSON.stringify({ Ref: groupId }));
    const [tgb] = manifestOf(binding.Properties.Manifest);
    expect(tgb!.spec).toEqual({
      serviceRef: { name: CONTROL_PLANE_NAME, port: 'http' },
      targetGroupARN: '<cfn>',
      targetType: 'ip',
    });
    expect(binding.DependsOn.some((d: string) => d.startsWith('LoadBalancerController'))).toBe(true);
    expect(binding.DependsOn.some((d: string) => d.startsWith('PlatformWorkloads'))).toBe(true);
    expect(chartResource).toBeDefined();
  });

  test('the image is built from the root Dockerfile, without node_modules, tests or docs, for the nodes architecture', () => {
    const stack = synth[env].stacks.find((s) => s.stackName.endsWith('-Workloads'))!;
    const assets = JSON.parse(
      readFileSync(stack.templateFile.replace('.template.json', '.assets.json'), 'utf8'),
    );
    const images = Object.values(assets.dockerImages) as {
      source: { directory: string; platform: string };
    }[];
    expect(images).toHaveLength(1);
    const context = path.join(synth[env].outdir, images[0]!.source.directory);
    expect(existsSync(path.join(context, 'Dockerfile'))).toBe(true);
    expect(existsSync(path.join(context, 'node_modules'))).toBe(false);
    // Tests and docs stay out, so a change to them alone keeps the image hash; the build's inputs stay in.
    expect(existsSync(path.join(context, 'README.md'))).toBe(false);
    expect(existsSync(path.join(context, 'stacks', 'workloads.test.ts'))).toBe(false);
    expect(existsSync(path.join(context, 'tenants', 'catalog', 'migrations'))).toBe(true);
    expect(existsSync(path.join(context, 'tsconfig.build.json'))).toBe(true);
    expect(images[0]!.source.platform).toBe('linux/amd64');
  });

  test('the kubectl handler runs in the private subnets with the kubectl of the cluster version', () => {
    const cluster = templateOf(synth[env], 'Cluster');
    cluster.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'onEvent handler for EKS kubectl resource provider',
      VpcConfig: { SubnetIds: Match.anyValue(), SecurityGroupIds: Match.anyValue() },
    });
    const handler = Object.values(cluster.findResources('AWS::Lambda::Function')).find(
      (f) => f.Properties.Description === 'onEvent handler for EKS kubectl resource provider',
    )!;
    expect(JSON.stringify(handler.Properties.VpcConfig.SubnetIds)).toMatch(/Vpcprivate.*Vpcprivate/);
    expect(() => checkKubectlSkew(config.cluster.kubernetesVersion)).not.toThrow();
  });
});

test('kubectl more than one minor away from the cluster is refused in one line', () => {
  expect(() => checkKubectlSkew('1.32')).toThrow(/'cluster.kubernetesVersion' \(1\.32\)/);
});

test('an existing hosted zone from the config is used, not created', () => {
  const config = { ...loadEnvironmentConfig('dev'), hostedZoneId: 'Z0123456789ABCDEFGHIJ' };
  const app = new App({ context: { '@aws-cdk/core:defaultCrossStackReferences': 'strong' } });
  const network = new NetworkStack(app, 'Network', { config });
  const cluster = new ClusterStack(app, 'Cluster', { config, vpc: network.vpc });
  const stack = new WorkloadsStack(app, 'Workloads', { config, vpc: network.vpc, cluster: cluster.cluster });
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::Route53::HostedZone', 0);
  template.hasResourceProperties('AWS::CertificateManager::Certificate', {
    DomainValidationOptions: Match.arrayWith([
      { DomainName: `*.app.${config.domain}`, HostedZoneId: 'Z0123456789ABCDEFGHIJ' },
    ]),
  });
  template.hasResourceProperties('AWS::Route53::RecordSet', {
    Name: `*.app.${config.domain}.`,
    HostedZoneId: 'Z0123456789ABCDEFGHIJ',
  });
}, 120_000);

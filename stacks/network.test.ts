import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import { cidrContains, loadBalancerSourceCidr } from '../constructs/ingress-source.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

describe.each(ENVIRONMENT_NAMES)('network stack in %s', (env) => {
  const config = fixtureConfig(env);
  const network = () => templateOf(synth[env], 'Network');

  test('spreads public, private-with-egress and isolated subnets over exactly the configured AZs', () => {
    const subnets = Object.values(network().findResources('AWS::EC2::Subnet'));
    expect(subnets).toHaveLength(3 * config.availabilityZones.length);
    const azs = new Set(subnets.map((s) => s.Properties.AvailabilityZone));
    expect([...azs].sort()).toEqual([...config.availabilityZones].sort());
    const types = subnets.map(
      (s) => s.Properties.Tags.find((t: { Key: string }) => t.Key === 'aws-cdk:subnet-type').Value,
    );
    for (const type of ['Public', 'Private', 'Isolated']) {
      expect(types.filter((t) => t === type)).toHaveLength(config.availabilityZones.length);
    }
  });

  test('puts every public subnet, and only those, in the block tenant ingress admits', () => {
    const block = loadBalancerSourceCidr(config.network.cidr);
    for (const subnet of Object.values(network().findResources('AWS::EC2::Subnet'))) {
      const type = subnet.Properties.Tags.find((t: { Key: string }) => t.Key === 'aws-cdk:subnet-type').Value;
      expect(cidrContains(block, subnet.Properties.CidrBlock), `${type} ${subnet.Properties.CidrBlock}`).toBe(
        type === 'Public',
      );
    }
  });

  test('takes its region and AZs from the deploy target', () => {
    const subnets = Object.values(network().findResources('AWS::EC2::Subnet'));
    for (const s of subnets) expect(s.Properties.AvailabilityZone.startsWith(config.region)).toBe(true);
  });

  test('has one NAT gateway per configured NAT', () => {
    network().resourceCountIs('AWS::EC2::NatGateway', config.network.natGateways);
  });

  test('logs all traffic to an encrypted log group with the configured retention', () => {
    network().hasResourceProperties('AWS::EC2::FlowLog', {
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
    network().hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: config.network.flowLogRetentionDays,
      KmsKeyId: Match.anyValue(),
    });
  });

  test('has an S3 gateway endpoint and private interface endpoints for ECR, STS, Secrets Manager and Logs', () => {
    const endpoints = Object.values(network().findResources('AWS::EC2::VPCEndpoint'));
    const gateway = endpoints
      .filter((e) => e.Properties.VpcEndpointType === 'Gateway')
      .map((e) => JSON.stringify(e.Properties.ServiceName));
    expect(gateway).toEqual([expect.stringContaining('.s3')]);
    const interfaces = endpoints.filter((e) => e.Properties.VpcEndpointType === 'Interface');
    expect(interfaces.map((e) => e.Properties.ServiceName).sort()).toEqual(
      ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager', 'sts'].map(
        (s) => `com.amazonaws.${config.region}.${s}`,
      ),
    );
    for (const e of interfaces) expect(e.Properties.PrivateDnsEnabled).toBe(true);
  });

  test('endpoint security group admits HTTPS from the VPC CIDR only', () => {
    network().hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('Interface endpoints'),
      SecurityGroupIngress: [Match.objectLike({ CidrIp: config.network.cidr, FromPort: 443, ToPort: 443 })],
    });
  });
});

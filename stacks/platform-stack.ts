import { Aws, CfnRule, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { type EnvironmentConfig, PLACEHOLDER_ACCOUNT } from '../config/environments.ts';
import { clusterSecurityGroupParameterName } from '../config/names.ts';

export interface PlatformStackProps extends StackProps {
  /** The validated environment config; it sets account, region and AZs. */
  readonly config: EnvironmentConfig;
}

/** A stack pinned to the config's account, region and AZs, so synth never asks AWS for them. */
export class PlatformStack extends Stack {
  readonly config: EnvironmentConfig;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, {
      ...props,
      env: { account: props.config.account, region: props.config.region },
      terminationProtection: props.config.name === 'prod',
    });
    this.config = props.config;
    // A template carries its account in every ARN: CloudFormation refuses it anywhere else, in one line.
    new CfnRule(this, 'DeployTargetAccount', {
      assertions: [
        {
          assert: Fn.conditionEquals(Aws.ACCOUNT_ID, props.config.account),
          assertDescription:
            props.config.account === PLACEHOLDER_ACCOUNT
              ? `synthesized for the offline placeholder account ${PLACEHOLDER_ACCOUNT}: synth again with -c account=<id> or the target account's credentials`
              : `synthesized for account ${props.config.account}: deploy it there or synth again for this account`,
        },
      ],
    });
  }

  /** The config's AZs instead of a context look-up. */
  override get availabilityZones(): string[] {
    return [...this.config.availabilityZones];
  }
}

/** Dev is disposable, logs included (a retained fixed-name log group would block the next deploy of dev). */
export function logRemovalPolicy(config: EnvironmentConfig): RemovalPolicy {
  return config.name === 'dev' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
}

/** Dev is disposable; every other environment keeps a final snapshot when a data store is deleted. */
export function dataStoreRemovalPolicy(config: EnvironmentConfig): RemovalPolicy {
  return config.name === 'dev' ? RemovalPolicy.DESTROY : RemovalPolicy.SNAPSHOT;
}

/**
 * The EKS cluster security group, read from SSM when the stack deploys rather than imported from the cluster
 * stack's outputs: a strong export would pin the group and block replacing the cluster.
 */
export function clusterClientSecurityGroup(stack: PlatformStack): ec2.ISecurityGroup {
  const id = ssm.StringParameter.valueForStringParameter(
    stack,
    clusterSecurityGroupParameterName(stack.config),
  );
  return ec2.SecurityGroup.fromSecurityGroupId(stack, 'ClusterSecurityGroup', id, { mutable: false });
}

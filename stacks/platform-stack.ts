import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/environments.ts';

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
  }

  /** The config's AZs instead of a context look-up. */
  override get availabilityZones(): string[] {
    return [...this.config.availabilityZones];
  }
}

/** Dev is disposable; every other environment keeps a final snapshot when a data store is deleted. */
export function dataStoreRemovalPolicy(config: EnvironmentConfig): RemovalPolicy {
  return config.name === 'dev' ? RemovalPolicy.DESTROY : RemovalPolicy.SNAPSHOT;
}

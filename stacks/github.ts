import { Aws, CfnOutput, Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { alarmTopicArn, type EnvironmentConfig } from '../config/environments.ts';
import { alarmTopicKeyAlias, resourcePrefix } from '../config/names.ts';
import { acknowledgeWildcards, type DrillAccess } from './cluster.ts';
import { PlatformStack, type PlatformStackProps } from './platform-stack.ts';

/** GitHub's OIDC issuer; its tokens carry `repo:<owner/name>:environment:<name>` as `sub` for environment jobs. */
export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com';
/** The audience aws-actions/configure-aws-credentials asks GitHub for. */
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com';
/** The CDK bootstrap qualifier; `cdk bootstrap` uses it unless told otherwise. */
export const CDK_QUALIFIER = 'hnb659fds';

export type GitHubRoleUse = keyof EnvironmentConfig['github']['environments'];

/** The `sub` a job in one GitHub Environment of the configured repository presents. */
export function githubSubject(config: EnvironmentConfig, environment: string): string {
  return `repo:${config.github.repository}:environment:${environment}`;
}

/** Fixed role names, so the GitHub variables an SRE sets once stay valid across deploys. */
export function githubRoleName(config: EnvironmentConfig, use: GitHubRoleUse): string {
  const suffix = { deploy: 'deploy', diff: 'diff', loadGate: 'load-gate', drills: 'dr-drill' }[use];
  return `${resourcePrefix(config)}-github-${suffix}`;
}

/** True when the environment names any GitHub Environment, i.e. when it needs the stack at all. */
export function needsGitHubStack(config: EnvironmentConfig): boolean {
  return Object.values(config.github.environments).some((name) => name !== undefined);
}

export interface GitHubStackProps extends PlatformStackProps {
  /** What the drills may do: the drill role gets the same scope as the in-cluster drills. */
  readonly drillAccess: DrillAccess;
}

/**
 * The GitHub OIDC provider (created or imported) and one role per CI use. Each role trusts only jobs of the
 * configured repository running in one named GitHub Environment, so a branch, a fork or another workflow
 * cannot assume it.
 */
export class GitHubStack extends PlatformStack {
  readonly roles: Partial<Record<GitHubRoleUse, iam.Role>> = {};

  constructor(scope: Construct, id: string, props: GitHubStackProps) {
    super(scope, id, props);
    const { config } = this;
    const providerArn =
      config.github.oidcProvider === 'create'
        ? new iam.OidcProviderNative(this, 'Provider', {
            url: `https://${GITHUB_OIDC_HOST}`,
            clientIds: [GITHUB_OIDC_AUDIENCE],
          }).oidcProviderArn
        : `arn:${Aws.PARTITION}:iam::${this.account}:oidc-provider/${GITHUB_OIDC_HOST}`;

    const bootstrapRole = (kind: string) =>
      `arn:${Aws.PARTITION}:iam::${this.account}:role/cdk-${CDK_QUALIFIER}-${kind}-role-${this.account}-${this.region}`;
    const statements: Record<GitHubRoleUse, iam.PolicyStatement[]> = {
      deploy: [
        new iam.PolicyStatement({
          sid: 'AssumeCdkBootstrapRoles',
          actions: ['sts:AssumeRole', 'sts:TagSession'],
          resources: ['deploy', 'file-publishing', 'image-publishing', 'lookup'].map(bootstrapRole),
        }),
      ],
      diff: [
        new iam.PolicyStatement({
          sid: 'AssumeCdkLookupRole',
          actions: ['sts:AssumeRole', 'sts:TagSession'],
          resources: [bootstrapRole('lookup')],
        }),
      ],
      loadGate: [
        new iam.PolicyStatement({
          sid: 'ReadPlatformStackOutputs',
          actions: ['cloudformation:DescribeStacks'],
          resources: [
            `arn:${Aws.PARTITION}:cloudformation:${this.region}:${this.account}:stack/AgentPlatform-${config.name}-*/*`,
          ],
        }),
      ],
      drills: [
        ...props.drillAccess.statements,
        // A failed run is reported to the alarm topic, whose key the observability stack names by alias.
        new iam.PolicyStatement({
          sid: 'ReportFailedDrills',
          actions: ['sns:Publish'],
          resources: [alarmTopicArn(config)],
        }),
        new iam.PolicyStatement({
          sid: 'EncryptForTheAlarmTopic',
          actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
          resources: [`arn:${Aws.PARTITION}:kms:${this.region}:${this.account}:key/*`],
          conditions: {
            StringEquals: { 'kms:ViaService': `sns.${this.region}.amazonaws.com` },
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': `alias/${alarmTopicKeyAlias(config)}` },
          },
        }),
      ],
    };

    for (const [use, environment] of Object.entries(config.github.environments) as [
      GitHubRoleUse,
      string,
    ][]) {
      const role = new iam.Role(this, `${use[0]!.toUpperCase()}${use.slice(1)}Role`, {
        roleName: githubRoleName(config, use),
        description: `GitHub Actions (${config.github.repository}, environment ${environment}): ${use}`,
        maxSessionDuration: Duration.hours(use === 'drills' ? 4 : 2),
        assumedBy: new iam.WebIdentityPrincipal(providerArn, {
          StringEquals: {
            [`${GITHUB_OIDC_HOST}:aud`]: GITHUB_OIDC_AUDIENCE,
            [`${GITHUB_OIDC_HOST}:sub`]: githubSubject(config, environment),
          },
        }),
        inlinePolicies: { ci: new iam.PolicyDocument({ statements: statements[use] }) },
      });
      this.roles[use] = role;
      new CfnOutput(this, `${role.node.id}Arn`, {
        value: role.roleArn,
        description: `Set as a variable of the GitHub Environment '${environment}'`,
      });
    }

    if (this.roles.drills) {
      acknowledgeWildcards(
        this.roles.drills,
        [
          ...props.drillAccess.findings,
          ['Resource', `arn:<AWS::Partition>:kms:${config.region}:${config.account}:key/*`],
          ['Action', 'Action::kms:GenerateDataKey*'],
        ],
        {
          Resource: `${props.drillAccess.reasons.Resource} The topic key is named by its alias and used only through SNS.`,
          Action:
            'kms:GenerateDataKey* covers the data-key variants SNS asks for when it encrypts a message.',
        },
      );
    }
    if (this.roles.loadGate) {
      Validations.of(this.roles.loadGate).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:${config.region}:${config.account}:stack/AgentPlatform-${config.name}-*/*]`,
        reason:
          "DescribeStacks on this environment's own stacks only; CloudFormation appends a generated id to each stack ARN.",
      });
    }
  }
}

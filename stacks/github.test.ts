import { beforeAll, describe, expect, test } from 'vitest';
import { type EnvironmentName, parseEnvironmentConfig } from '../config/environments.ts';
import { GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST, githubRoleName } from './github.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

interface RoleResource {
  Properties: {
    RoleName: string;
    AssumeRolePolicyDocument: { Statement: { Action: string; Condition: unknown; Principal: unknown }[] };
    Policies: { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } }[];
  };
}

function roles(env: EnvironmentName): Record<string, RoleResource['Properties']> {
  const found = templateOf(synth[env], 'GitHub').findResources('AWS::IAM::Role') as Record<
    string,
    RoleResource
  >;
  return Object.fromEntries(Object.values(found).map((r) => [r.Properties.RoleName, r.Properties]));
}

const bootstrap = (kind: string) =>
  expect.objectContaining({
    'Fn::Join': ['', expect.arrayContaining([expect.stringContaining(`:role/cdk-hnb659fds-${kind}-role-`)])],
  });

describe.each([
  ['staging', { deploy: 'staging', loadGate: 'staging-load-gate', drills: 'staging-dr-drill' }],
  ['prod', { deploy: 'prod', diff: 'prod-diff' }],
] as const)('GitHub roles in %s', (env, environments) => {
  const config = fixtureConfig(env);

  test('exactly one role per named GitHub Environment', () => {
    expect(Object.keys(roles(env)).sort()).toEqual(
      Object.keys(environments)
        .map((use) => githubRoleName(config, use as keyof typeof environments))
        .sort(),
    );
  });

  test.each(Object.entries(environments))(
    '%s trusts only %s of the configured repository',
    (use, environment) => {
      const role = roles(env)[githubRoleName(config, use as keyof typeof environments)]!;
      expect(role.AssumeRolePolicyDocument.Statement).toEqual([
        {
          Action: 'sts:AssumeRoleWithWebIdentity',
          Effect: 'Allow',
          Principal: { Federated: expect.anything() },
          // StringEquals, not StringLike: no wildcard in the subject, so no other branch, fork or environment.
          Condition: {
            StringEquals: {
              [`${GITHUB_OIDC_HOST}:aud`]: GITHUB_OIDC_AUDIENCE,
              [`${GITHUB_OIDC_HOST}:sub`]: `repo:generic-corp/agent-platform-infra:environment:${environment}`,
            },
          },
        },
      ]);
    },
  );
});

test('the deploy role may assume the CDK bootstrap roles and nothing else', () => {
  const role = roles('prod')[githubRoleName(fixtureConfig('prod'), 'deploy')]!;
  const statements = role.Policies.flatMap((p) => p.PolicyDocument.Statement);
  expect(statements).toEqual([
    expect.objectContaining({
      Action: ['sts:AssumeRole', 'sts:TagSession'],
      Resource: [
        bootstrap('deploy'),
        bootstrap('file-publishing'),
        bootstrap('image-publishing'),
        bootstrap('lookup'),
      ],
    }),
  ]);
});

test('the prod diff role may assume only the CDK lookup role', () => {
  const role = roles('prod')[githubRoleName(fixtureConfig('prod'), 'diff')]!;
  expect(role.Policies.flatMap((p) => p.PolicyDocument.Statement)).toEqual([
    expect.objectContaining({ Action: ['sts:AssumeRole', 'sts:TagSession'], Resource: bootstrap('lookup') }),
  ]);
});

test('the staging drill role has the in-cluster drills’ scope, plus publishing a failure to the alarm topic', () => {
  const role = roles('staging')[githubRoleName(fixtureConfig('staging'), 'drills')]!;
  const sids = role.Policies.flatMap((p) => p.PolicyDocument.Statement).map(
    (st) => (st as { Sid?: string }).Sid,
  );
  expect(sids).toEqual([
    'FailOverAndSnapshotThePlatformDatabase',
    'CreateTaggedDrillCopies',
    'UseAndDeleteTaggedDrillCopies',
    'PlaceRestoredCopies',
    'FailOverThePlatformCache',
    'Describe',
    'ReportFailedDrills',
    'EncryptForTheAlarmTopic',
  ]);
  const created = role.Policies.flatMap((p) => p.PolicyDocument.Statement).find(
    (st) => (st as { Sid?: string }).Sid === 'CreateTaggedDrillCopies',
  ) as unknown as { Condition: unknown };
  expect(created.Condition).toEqual({ StringEquals: { 'aws:RequestTag/dr-drill-env': 'staging' } });
});

test('staging creates the account’s GitHub OIDC provider for the STS audience; prod imports it', () => {
  templateOf(synth.staging, 'GitHub').hasResourceProperties('AWS::IAM::OIDCProvider', {
    Url: `https://${GITHUB_OIDC_HOST}`,
    ClientIdList: [GITHUB_OIDC_AUDIENCE],
  });
  templateOf(synth.prod, 'GitHub').resourceCountIs('AWS::IAM::OIDCProvider', 0);
});

test('dev names no GitHub Environment and gets no GitHub stack', () => {
  expect(synth.dev.stacks.map((s) => s.stackName)).not.toContain('AgentPlatform-dev-GitHub');
});

test.each(['drills', 'loadGate'])('the config refuses a %s role in prod', (use) => {
  const raw = structuredClone(fixtureConfig('prod')) as {
    github: { environments: Record<string, string> };
  };
  raw.github.environments[use] = 'prod';
  expect(() => parseEnvironmentConfig(raw, "environment 'prod'")).toThrow(
    new RegExp(`'github\\.environments\\.${use}' \\("prod"\\) is refused in prod`),
  );
});

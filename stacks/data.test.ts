import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import { DATABASE_TOPOLOGY, SLOW_STATEMENT_MS } from './data.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

/** Ingress sources of a security group, as logical ids or imported values. */
function ingressSources(template: ReturnType<typeof templateOf>, groupPrefix: string): string[] {
  return Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
    .filter((r) => JSON.stringify(r.Properties.GroupId).includes(groupPrefix))
    .map((r) => JSON.stringify(r.Properties.SourceSecurityGroupId ?? r.Properties.CidrIp));
}

test('the drills can read the database topology', () => {
  expect(DATABASE_TOPOLOGY).toBe('multi-az-instance');
});

describe.each(ENVIRONMENT_NAMES)('data stack in %s', (env) => {
  const config = fixtureConfig(env);
  const db = config.database;
  const data = () => templateOf(synth[env], 'Data');

  test('runs PostgreSQL at the configured full minor version, Multi-AZ, in isolated subnets', () => {
    data().hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      EngineVersion: db.engineVersion,
      DBInstanceClass: `db.${db.instanceClass}`,
      MultiAZ: true,
      PubliclyAccessible: false,
    });
    const subnetGroup = Object.values(data().findResources('AWS::RDS::DBSubnetGroup'))[0]!;
    const subnets = JSON.stringify(subnetGroup.Properties.SubnetIds);
    expect(subnets).toContain('isolatedSubnet');
    expect(subnets).not.toMatch(/privateSubnet|publicSubnet/);
  });

  test('encrypts storage with KMS on gp3 with storage autoscaling', () => {
    data().hasResourceProperties('AWS::RDS::DBInstance', {
      StorageEncrypted: true,
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] },
      StorageType: 'gp3',
      AllocatedStorage: String(db.allocatedStorageGiB),
      MaxAllocatedStorage: db.maxAllocatedStorageGiB,
    });
  });

  test('keeps backups for the configured retention and deletion protection as configured', () => {
    data().hasResourceProperties('AWS::RDS::DBInstance', {
      BackupRetentionPeriod: db.backupRetentionDays,
      DeletionProtection: db.deletionProtection,
      DeleteAutomatedBackups: false,
    });
  });

  test('has Performance Insights (encrypted) and enhanced monitoring at the configured interval', () => {
    data().hasResourceProperties('AWS::RDS::DBInstance', {
      EnablePerformanceInsights: true,
      PerformanceInsightsRetentionPeriod: db.performanceInsightsRetentionDays,
      PerformanceInsightsKMSKeyId: Match.anyValue(),
      MonitoringInterval: db.monitoringIntervalSeconds,
      MonitoringRoleArn: Match.anyValue(),
    });
  });

  test('forces TLS and logs slow statements', () => {
    data().hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Family: `postgres${db.engineVersion.split('.')[0]}`,
      Parameters: { 'rds.force_ssl': '1', log_min_duration_statement: String(SLOW_STATEMENT_MS) },
    });
  });

  test('keeps the master secret in Secrets Manager, KMS-encrypted and rotated on schedule', () => {
    data().hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: `agent-platform/${env}/database/master`,
      KmsKeyId: Match.anyValue(),
    });
    data().hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: `rate(${db.secretRotationDays} days)` },
    });
  });

  test('fronts the database with an RDS Proxy that requires TLS and end-to-end IAM authentication', () => {
    data().hasResourceProperties('AWS::RDS::DBProxy', {
      EngineFamily: 'POSTGRESQL',
      RequireTLS: true,
      DefaultAuthScheme: 'IAM_AUTH',
      Auth: Match.absent(),
    });
  });

  test('lets the proxy log in to the database with IAM as any database user', () => {
    const proxy = Object.values(data().findResources('AWS::RDS::DBProxy'))[0]!;
    const roleId = proxy.Properties.RoleArn['Fn::GetAtt'][0];
    const policy = Object.values(data().findResources('AWS::IAM::Policy')).find((p) =>
      JSON.stringify(p.Properties.Roles).includes(roleId),
    )!;
    const [statement] = policy.Properties.PolicyDocument.Statement;
    expect(statement.Action).toBe('rds-db:connect');
    expect(JSON.stringify(statement.Resource)).toMatch(/:dbuser:".*DbiResourceId.*\/\*"/);
  });

  test('maps every tenant namespace to one role that connects only as its own namespace role', () => {
    const role = Object.values(data().findResources('AWS::IAM::Role')).find(
      (r) => r.Properties.RoleName === `agent-platform-${env}-tenant-database`,
    )!;
    const trust = role.Properties.AssumeRolePolicyDocument.Statement;
    expect(trust.flatMap((t: { Action: string | string[] }) => t.Action).sort()).toEqual([
      'sts:AssumeRole',
      'sts:TagSession',
    ]);
    for (const t of trust) {
      expect(t.Principal).toEqual({ Service: 'pods.eks.amazonaws.com' });
      expect(t.Condition).toEqual({
        StringEquals: {
          'aws:RequestTag/eks-cluster-name': `agent-platform-${env}`,
          'aws:RequestTag/kubernetes-service-account': 'tenant-database',
        },
        StringNotEquals: { 'aws:RequestTag/kubernetes-namespace': ['platform', 'kube-system', 'default'] },
      });
    }
    const policy = Object.values(data().findResources('AWS::IAM::Policy')).find((p) =>
      p.Properties.PolicyName.startsWith('TenantDatabaseRole'),
    )!;
    const [connect] = policy.Properties.PolicyDocument.Statement;
    expect(connect.Action).toBe('rds-db:connect');
    const resource = JSON.stringify(connect.Resource);
    expect(resource).toContain(`:rds-db:${config.region}:${config.account}:dbuser:`);
    expect(resource).toContain('{"Fn::Select":[6,{"Fn::Split":[":",{"Fn::GetAtt":["DatabaseProxy');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a JavaScript template
    expect(resource).toContain('/${aws:PrincipalTag/kubernetes-namespace}');
  });

  test('admits only the EKS cluster security group (and the proxy and rotation function it owns)', () => {
    const sources = [
      ...ingressSources(data(), 'DatabaseSecurityGroup'),
      ...ingressSources(data(), 'ProxySecurityGroup'),
    ];
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(source).toMatch(/SsmParameterValue|ProxySecurityGroup|RotationSingleUserSecurityGroup/);
    }
    expect(sources.some((s) => s.includes('SsmParameterValue'))).toBe(true);
    expect(JSON.stringify(data().toJSON().Parameters)).toContain(
      `/agent-platform/${env}/cluster/security-group-id`,
    );
    expect(JSON.stringify(data().toJSON())).not.toContain(`Fn::ImportValue":"AgentPlatform-${env}-Cluster`);
  });
});

describe('data store removal policies', () => {
  test.each([
    ['dev', 'Delete', 'Delete'],
    ['staging', 'Snapshot', 'Retain'],
    ['prod', 'Snapshot', 'Retain'],
  ] as const)('%s: database %s, master secret %s', (env, database, secret) => {
    templateOf(synth[env], 'Data').hasResource('AWS::RDS::DBInstance', {
      DeletionPolicy: database,
      UpdateReplacePolicy: database,
    });
    templateOf(synth[env], 'Data').hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: secret });
  });

  test('only prod turns deletion protection on', () => {
    const protectedEnvs = ENVIRONMENT_NAMES.filter(
      (env) =>
        Object.values(templateOf(synth[env], 'Data').findResources('AWS::RDS::DBInstance'))[0]!.Properties
          .DeletionProtection,
    );
    expect(protectedEnvs).toEqual(['prod']);
  });
});

test('tells operators where to connect without exporting anything', () => {
  const outputs = templateOf(synth.prod, 'Data').findOutputs('*');
  expect(outputs.ProxyEndpoint?.Value).toEqual({
    'Fn::GetAtt': [expect.stringMatching(/^DatabaseProxy/), 'Endpoint'],
  });
  expect(outputs.MasterSecretName?.Value).toBe('agent-platform/prod/database/master');
  for (const output of Object.values(outputs)) expect(output.Export).toBeUndefined();
});

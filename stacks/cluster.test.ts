import { Match } from 'aws-cdk-lib/assertions';
import { NodegroupAmiType } from 'aws-cdk-lib/aws-eks-v2';
import { beforeAll, describe, expect, test } from 'vitest';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';
import { DRILL_ENV_TAG, resourcePrefix, WORKLOAD_IDENTITIES } from '../config/names.ts';
import { DRILL_ENV_TAG as DRILLS_OWN_TAG, drillResourcePrefix } from '../runbooks/drills/options.ts';
import { amiTypeFor, CORE_ADDONS } from './cluster.ts';
import type { SynthResult } from './synth.ts';
import { fixtureConfig, synthesizedAll, templateOf } from './testing/templates.ts';
import { allActions } from './workload-actions.ts';

let synth: Record<EnvironmentName, SynthResult>;
beforeAll(async () => {
  synth = await synthesizedAll();
});

interface Statement {
  Sid: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string>>;
}

/** Statements of the default policy of the role whose logical id starts with `rolePrefix`. */
function statementsOf(template: ReturnType<typeof templateOf>, rolePrefix: string): Statement[] {
  const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) =>
    id.startsWith(`${rolePrefix}DefaultPolicy`),
  );
  expect(policies).toHaveLength(1);
  return policies[0]![1].Properties.PolicyDocument.Statement as Statement[];
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe.each(ENVIRONMENT_NAMES)('cluster stack in %s', (env) => {
  const config = fixtureConfig(env);
  const cluster = () => templateOf(synth[env], 'Cluster');

  test('runs the configured Kubernetes version with access entries and KMS-encrypted secrets', () => {
    cluster().hasResourceProperties('AWS::EKS::Cluster', {
      Version: config.cluster.kubernetesVersion,
      AccessConfig: { AuthenticationMode: 'API', BootstrapClusterCreatorAdminPermissions: false },
      EncryptionConfig: [{ Provider: { KeyArn: Match.anyValue() }, Resources: ['secrets'] }],
      ComputeConfig: { Enabled: false },
    });
  });

  test('answers on the private endpoint, and on the public one only from the configured CIDRs', () => {
    cluster().hasResourceProperties('AWS::EKS::Cluster', {
      ResourcesVpcConfig: Match.objectLike({
        EndpointPublicAccess: true,
        EndpointPrivateAccess: true,
        PublicAccessCidrs: config.cluster.publicAccessCidrs,
      }),
    });
  });

  test('turns on NetworkPolicy enforcement in the VPC CNI add-on, with its node agent', () => {
    const cni = Object.values(cluster().findResources('AWS::EKS::Addon')).find(
      (a) => a.Properties.AddonName === 'vpc-cni',
    )!;
    expect(JSON.parse(cni.Properties.ConfigurationValues)).toEqual({
      enableNetworkPolicy: 'true',
      nodeAgent: { enabled: true },
    });
  });

  test('keeps control-plane logs for the configured retention, deleted with dev only', () => {
    cluster().hasResource('AWS::Logs::LogGroup', {
      Properties: {
        LogGroupName: `/aws/eks/agent-platform-${env}/cluster`,
        RetentionInDays: config.observability.logRetentionDays,
      },
      DeletionPolicy: env === 'dev' ? 'Delete' : 'Retain',
    });
  });

  test('publishes the cluster security group in SSM instead of exporting it', () => {
    cluster().hasResourceProperties('AWS::SSM::Parameter', {
      Name: `/agent-platform/${env}/cluster/security-group-id`,
      Value: { 'Fn::GetAtt': [Match.anyValue(), 'ClusterSecurityGroupId'] },
    });
  });

  test('logs every control-plane log type', () => {
    cluster().hasResourceProperties('AWS::EKS::Cluster', {
      Logging: {
        ClusterLogging: {
          EnabledTypes: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'].map((Type) => ({
            Type,
          })),
        },
      },
    });
  });

  test('has one managed node group per configured group, in private subnets, with its sizes', () => {
    cluster().resourceCountIs('AWS::EKS::Nodegroup', config.cluster.nodeGroups.length);
    for (const group of config.cluster.nodeGroups) {
      cluster().hasResourceProperties('AWS::EKS::Nodegroup', {
        NodegroupName: group.name,
        InstanceTypes: group.instanceTypes,
        DiskSize: group.diskSizeGiB,
        ScalingConfig: { MinSize: group.minSize, DesiredSize: group.desiredSize, MaxSize: group.maxSize },
        Subnets: Match.arrayWith([{ 'Fn::ImportValue': Match.stringLikeRegexp('privateSubnet') }]),
      });
    }
  });

  test('installs the core add-ons as EKS-managed add-ons', () => {
    for (const addon of CORE_ADDONS) cluster().hasResourceProperties('AWS::EKS::Addon', { AddonName: addon });
    cluster().hasResourceProperties('AWS::EKS::Cluster', { BootstrapSelfManagedAddons: false });
  });

  test('grants the configured admin roles cluster-admin through access entries', () => {
    for (const arn of config.cluster.adminPrincipalArns) {
      cluster().hasResourceProperties('AWS::EKS::AccessEntry', {
        PrincipalArn: arn,
        AccessPolicies: [Match.objectLike({ AccessScope: { Type: 'cluster' } })],
      });
    }
  });

  test.each(Object.values(WORKLOAD_IDENTITIES))(
    'binds $namespace/$serviceAccount through Pod Identity',
    (identity) => {
      cluster().hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
        Namespace: identity.namespace,
        ServiceAccount: identity.serviceAccount,
      });
    },
  );

  test('control plane touches only tenant secrets and budgets, never a wildcard resource', () => {
    const statements = statementsOf(cluster(), 'ControlPlaneRole');
    expect(JSON.stringify(statements.flatMap((s) => s.Resource))).not.toContain('"*"');
    for (const s of statements.filter((s) => actions(s).some((a) => a.startsWith('secretsmanager:')))) {
      expect(JSON.stringify(s.Resource)).toContain(`:secret:agent-platform/${env}/tenants/`);
    }
    // The console's Health page reads the platform database's automated snapshots, and nothing else of RDS.
    const backups = statements.filter((s) => actions(s).some((a) => a.startsWith('rds:')));
    expect(backups.map(actions)).toEqual([['rds:DescribeDBSnapshots']]);
    expect(JSON.stringify(backups[0]!.Resource)).toMatch(
      new RegExp(`:db:agent-platform-${env}-db".*:snapshot:rds:agent-platform-${env}-db-\\*"`),
    );
  });

  test('cost guard publishes to the alarm topic and may encrypt with its key through SNS only', () => {
    const statements = statementsOf(cluster(), 'CostGuardRole');
    const publish = statements.find((s) => actions(s).includes('sns:Publish'))!;
    expect(publish.Resource).toBe(
      `arn:aws:sns:${config.region}:${config.account}:agent-platform-${env}-alarms`,
    );
    const kms = statements.find((s) => actions(s).includes('kms:GenerateDataKey*'))!;
    expect(actions(kms).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    expect(kms.Condition).toEqual({
      StringEquals: { 'kms:ViaService': `sns.${config.region}.amazonaws.com` },
      'ForAnyValue:StringEquals': { 'kms:ResourceAliases': `alias/agent-platform-${env}-alarms` },
    });
  });

  test('cost guard sends e-mail only from the cost report sender of the environment domain', () => {
    const ses = statementsOf(cluster(), 'CostGuardRole').find((s) => actions(s).includes('ses:SendEmail'))!;
    expect(actions(ses)).toEqual(['ses:SendEmail']);
    expect(JSON.stringify(ses.Resource)).toContain(`:identity/${config.domain}`);
    expect(ses.Condition).toEqual({ StringEquals: { 'ses:FromAddress': `cost-report@${config.domain}` } });
  });

  test.each(['ControlPlaneRole', 'CostGuardRole'])(
    '%s reconciles only the tenant budgets of the environment',
    (role) => {
      const budgets = statementsOf(cluster(), role).find((s) => actions(s).includes('budgets:ModifyBudget'))!;
      expect(actions(budgets).sort()).toEqual([
        'budgets:ModifyBudget',
        'budgets:TagResource',
        'budgets:ViewBudget',
      ]);
      expect(JSON.stringify(budgets.Resource)).toContain(`:budget/agent-platform-${env}-tenant-*`);
    },
  );

  test.each([
    ['ControlPlaneRole', 'controlPlane'],
    ['CostGuardRole', 'costGuard'],
    ['DrillsRole', 'drills'],
  ] as const)('%s grants exactly the actions of its workload list', (role, workload) => {
    const granted = [...new Set(statementsOf(cluster(), role).flatMap(actions))].sort();
    expect(granted).toEqual(allActions(workload));
  });

  test('drills act on the platform database only when it carries the platform tags', () => {
    const statements = statementsOf(cluster(), 'DrillsRole');
    const source = statements.find((s) => actions(s).includes('rds:RebootDBInstance'))!;
    expect(source.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/app': 'agent-platform', 'aws:ResourceTag/env': env },
    });
    expect(JSON.stringify(source.Resource)).toContain(`:db:${resourcePrefix(config)}-db`);
  });

  test('drills create, restore and delete only tagged copies under the drill prefix', () => {
    const statements = statementsOf(cluster(), 'DrillsRole');
    for (const s of statements.filter((s) =>
      actions(s).some((a) => /^rds:(Delete|AddTags)|^rds:RestoreDBInstanceFromDBSnapshot$/.test(a)),
    )) {
      if (s.Sid === 'PlaceRestoredCopies') continue;
      expect(JSON.stringify(s.Resource)).toContain(drillResourcePrefix(env));
      expect(JSON.stringify(s.Condition)).toContain(`/${DRILL_ENV_TAG}`);
    }
    const mutating = statements.filter((s) => actions(s).some((a) => !/:(Describe|List)/.test(a)));
    for (const s of mutating) expect(s.Resource).not.toBe('*');
  });
});

test('the drills tag their copies with the key the drills role keys on', () => {
  expect(DRILL_ENV_TAG).toBe(DRILLS_OWN_TAG);
});

test.each([
  [['m6i.xlarge'], NodegroupAmiType.AL2023_X86_64_STANDARD],
  [['m6g.large', 'c7gn.xlarge'], NodegroupAmiType.AL2023_ARM_64_STANDARD],
  [['m6g.large', 'm6i.large'], NodegroupAmiType.AL2023_X86_64_STANDARD],
])('node group of %j uses %s', (types, ami) => {
  expect(amiTypeFor(types)).toBe(ami);
});

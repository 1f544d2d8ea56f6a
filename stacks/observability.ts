import { RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { alarmTopicName } from '../config/environments.ts';
import { alarmTopicKeyAlias, resourcePrefix } from '../config/names.ts';
import type { AlarmFactoryProps } from '../constructs/monitoring/alarm.ts';
import { createCacheAlarms } from '../constructs/monitoring/cache-alarms.ts';
import { createEksAlarms } from '../constructs/monitoring/eks-alarms.ts';
import { createRdsAlarms } from '../constructs/monitoring/rds-alarms.ts';
import { PlatformStack, type PlatformStackProps } from './platform-stack.ts';

export interface ObservabilityStackProps extends PlatformStackProps {
  /** DBInstanceIdentifier of the shared database. */
  readonly databaseInstanceId: string;
  /** Member cluster ids of the cache replication group. */
  readonly cacheNodeIds: readonly string[];
  readonly clusterName: string;
}

/** Services that publish to the alarm topic: alarms, budgets and cost anomaly detection. */
const PUBLISHERS = ['cloudwatch.amazonaws.com', 'budgets.amazonaws.com', 'costalerts.amazonaws.com'];

/** The alarm topic, the platform alarms (each linking its runbook) and a dashboard. */
export class ObservabilityStack extends PlatformStack {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: ObservabilityStackProps) {
    super(scope, id, props);
    const { config } = this;

    const key = new kms.Key(this, 'TopicKey', {
      alias: alarmTopicKeyAlias(config),
      description: `Alarm topic encryption (${config.name})`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowPublishersToEncrypt',
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        principals: PUBLISHERS.map((p) => new iam.ServicePrincipal(p)),
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': config.account } },
      }),
    );

    this.topic = new sns.Topic(this, 'AlarmTopic', {
      topicName: alarmTopicName(config),
      displayName: `agent platform ${config.name} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowPlatformPublishers',
        actions: ['sns:Publish'],
        principals: PUBLISHERS.map((p) => new iam.ServicePrincipal(p)),
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': config.account } },
      }),
    );
    this.topic.addSubscription(new subscriptions.EmailSubscription(config.alertEmail));

    const factory: AlarmFactoryProps = {
      namePrefix: resourcePrefix(config),
      action: new cloudwatchActions.SnsAction(this.topic),
    };
    this.alarms = [
      ...createRdsAlarms(this, {
        ...factory,
        instanceIdentifier: props.databaseInstanceId,
        allocatedStorageGiB: config.database.allocatedStorageGiB,
      }),
      ...createCacheAlarms(this, { ...factory, nodeIds: props.cacheNodeIds }),
      ...createEksAlarms(this, {
        ...factory,
        clusterName: props.clusterName,
        minimumNodes: config.cluster.nodeGroups.reduce((sum, g) => sum + g.minSize, 0),
      }),
    ];

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: resourcePrefix(config),
    });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Platform alarms', alarms: this.alarms, width: 24 }),
    );
    dashboard.addWidgets(
      ...this.alarms.map((alarm) => new cloudwatch.AlarmWidget({ alarm, title: alarm.node.id, width: 8 })),
    );
  }
}

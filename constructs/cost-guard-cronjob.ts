import { App, Chart, type ChartProps, Cron, Duration, Size } from 'cdk8s';
import { ConcurrencyPolicy, Cpu, CronJob, EnvValue, Secret, ServiceAccount, Volume } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { ENVIRONMENT_NAMES, type EnvironmentName } from '../config/environments.ts';

/** Thrown for props the chart cannot render; quotes the offending prop and value. */
export class CostGuardCronJobError extends Error {
  override readonly name = 'CostGuardCronJobError';
}

export interface CostGuardCronJobProps {
  /** Environment config the guard loads (`--env`). */
  readonly env: EnvironmentName;
  /** Platform image holding this repository and its node_modules. */
  readonly image: string;
  /** Secret key holding the catalog's DATABASE_URL. */
  readonly databaseUrlSecret: { readonly name: string; readonly key: string };
  /** IAM role (IRSA) allowed ce:GetCostAndUsage, sns:Publish to the alarm topic and ses:SendEmail. */
  readonly roleArn: string;
  /**
   * Hours between runs. Cost Explorer refreshes a few times a day and every request costs $0.01,
   * so running more often buys nothing.
   * @default 6
   */
  readonly everyHours?: number;
  /**
   * Namespace of the CronJob.
   * @default 'platform'
   */
  readonly namespace?: string;
}

/** The guard's flags in the cluster: it acts; suspensions still follow the environment's autoSuspend. */
export const COST_GUARD_ARGS = ['run', '--apply'] as const;

/**
 * The cost guard as a Kubernetes CronJob: one run at a time, no retries (a failed run is not
 * repeated at $0.01 a page; the next schedule runs anyway), a non-root read-only container.
 */
export class CostGuardCronJobChart extends Chart {
  constructor(scope: Construct, id: string, props: CostGuardCronJobProps, chartProps: ChartProps = {}) {
    super(scope, id, { ...chartProps, namespace: props.namespace ?? 'platform' });
    if (!(ENVIRONMENT_NAMES as readonly string[]).includes(props.env)) {
      throw new CostGuardCronJobError(
        `'env' ('${props.env}') must be one of ${ENVIRONMENT_NAMES.join(', ')}`,
      );
    }
    const everyHours = props.everyHours ?? 6;
    if (!Number.isInteger(everyHours) || everyHours < 1 || 24 % everyHours !== 0) {
      throw new CostGuardCronJobError(`'everyHours' (${everyHours}) must be a whole divisor of 24`);
    }
    if (!/^arn:aws:iam::\d{12}:role\/.+$/.test(props.roleArn)) {
      throw new CostGuardCronJobError(`'roleArn' ('${props.roleArn}') must be an IAM role ARN`);
    }
    const serviceAccount = new ServiceAccount(this, 'service-account', {
      metadata: { name: 'cost-guard', annotations: { 'eks.amazonaws.com/role-arn': props.roleArn } },
      automountToken: true,
    });
    const tmp = Volume.fromEmptyDir(this, 'tmp', 'tmp', { sizeLimit: Size.mebibytes(256) });
    const job = new CronJob(this, 'cron-job', {
      metadata: { name: 'cost-guard', labels: { 'app.kubernetes.io/name': 'cost-guard' } },
      schedule: Cron.schedule({ minute: '17', hour: everyHours === 1 ? '*' : `*/${everyHours}` }),
      timeZone: 'Etc/UTC',
      concurrencyPolicy: ConcurrencyPolicy.FORBID,
      startingDeadline: Duration.minutes(30),
      backoffLimit: 0,
      activeDeadline: Duration.minutes(20),
      successfulJobsRetained: 3,
      failedJobsRetained: 5,
      serviceAccount,
      containers: [
        {
          name: 'cost-guard',
          image: props.image,
          command: ['node', '--import', 'tsx', 'bin/cost-guard.ts', ...COST_GUARD_ARGS, '--env', props.env],
          envVariables: {
            DATABASE_URL: EnvValue.fromSecretValue({
              secret: Secret.fromSecretName(this, 'database-url', props.databaseUrlSecret.name),
              key: props.databaseUrlSecret.key,
            }),
            HOME: EnvValue.fromValue('/tmp'),
          },
          resources: {
            cpu: { request: Cpu.millis(250), limit: Cpu.millis(1000) },
            memory: { request: Size.mebibytes(512), limit: Size.gibibytes(1) },
          },
          securityContext: { ensureNonRoot: true, readOnlyRootFilesystem: true, user: 1000, group: 1000 },
          volumeMounts: [{ path: '/tmp', volume: tmp }],
        },
      ],
    });
    job.metadata.addLabel('app.kubernetes.io/part-of', 'agent-platform');
  }
}

/** The CronJob as YAML, for `kubectl apply -f -`. */
export function renderCostGuardCronJob(props: CostGuardCronJobProps): string {
  const app = new App({ outdir: '/nonexistent-cdk8s-outdir' });
  new CostGuardCronJobChart(app, 'cost-guard', props);
  return app.synthYaml();
}

import { Testing } from 'cdk8s';
import { describe, expect, test } from 'vitest';
import {
  CostGuardCronJobChart,
  CostGuardCronJobError,
  type CostGuardCronJobProps,
  renderCostGuardCronJob,
} from './cost-guard-cronjob.ts';

const BASE: CostGuardCronJobProps = {
  env: 'prod',
  image: 'registry.example.com/agent-platform:1.2.3',
  databaseUrlSecret: { name: 'catalog-database', key: 'url' },
  roleArn: 'arn:aws:iam::123456789012:role/cost-guard',
};

// biome-ignore lint/suspicious/noExplicitAny: synthesized manifests are plain JSON
type Manifest = any;

function synth(props: Partial<CostGuardCronJobProps> = {}): Manifest[] {
  return Testing.synth(new CostGuardCronJobChart(Testing.app(), 'cost-guard', { ...BASE, ...props }));
}

describe('CostGuardCronJobChart', () => {
  test('runs the guard with --apply every 6 hours, one at a time, without retries', () => {
    const cron = synth().find((m) => m.kind === 'CronJob');
    expect(cron.metadata.namespace).toBe('platform');
    expect(cron.spec).toMatchObject({
      schedule: '17 */6 * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
    });
    const job = cron.spec.jobTemplate.spec;
    expect(job.backoffLimit).toBe(0);
    const container = job.template.spec.containers[0];
    expect(container.command).toEqual([
      'node',
      '--import',
      'tsx',
      'bin/cost-guard.ts',
      'run',
      '--apply',
      '--env',
      'prod',
    ]);
    expect(container.env).toContainEqual({
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'catalog-database', key: 'url' } },
    });
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    expect(job.template.spec.serviceAccountName).toBe('cost-guard');
  });

  test('the service account carries the IRSA role', () => {
    const account = synth().find((m) => m.kind === 'ServiceAccount');
    expect(account.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': BASE.roleArn });
  });

  test.each([
    [{ everyHours: 5 }, /'everyHours' \(5\) must be a whole divisor of 24/],
    [{ roleArn: 'cost-guard' }, /'roleArn' \('cost-guard'\) must be an IAM role ARN/],
    [{ env: 'qa' as never }, /'env' \('qa'\) must be one of dev, staging, prod/],
  ])('rejects %j', (props, message) => {
    expect(() => synth(props)).toThrow(CostGuardCronJobError);
    expect(() => synth(props)).toThrow(message);
  });

  test('renders YAML', () => {
    expect(renderCostGuardCronJob({ ...BASE, everyHours: 1 })).toMatch(/schedule: 17 \* \* \* \*/);
  });
});

import {
  BudgetsClient,
  CreateBudgetCommand,
  CreateNotificationCommand,
  DescribeBudgetCommand,
  DescribeNotificationsForBudgetCommand,
  UpdateBudgetCommand,
} from '@aws-sdk/client-budgets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { alarmTopicArn, type EnvironmentConfig } from '../config/environments.ts';
import { platformTags, secretNames } from '../config/names.ts';
import { BUDGET_LINE_PERCENTS } from './budget-lines.ts';
import type { Tier } from './tiers.ts';

/** Thrown when the AWS endpoint cannot be reached; the tenant stays `provisioning` and a rerun resumes. */
export class AwsUnavailableError extends Error {
  override readonly name = 'AwsUnavailableError';
}

/** AWS answered with an error; one line naming the call, the error and the HTTP status. */
export class AwsServiceError extends Error {
  override readonly name = 'AwsServiceError';
}

/** Budget notification thresholds, percent of the tier's monthly cost budget (ACTUAL spend). */
export const BUDGET_THRESHOLDS_PERCENT = BUDGET_LINE_PERCENTS;

/**
 * The database secret of a tenant onboarded before database IAM authentication; new tenants have none.
 * Offboarding still schedules its deletion.
 */
export function tenantSecretName(env: EnvironmentConfig, tenantId: string): string {
  return `${secretNames(env).tenantsPrefix}${tenantId}/database`;
}

export function tenantBudgetName(env: EnvironmentConfig, tenantId: string): string {
  return `agent-platform-${env.name}-tenant-${tenantId}`;
}

/** Cost filter on the `tenant` cost-allocation tag, in the Budgets API's `user:<key>$<value>` form. */
export function tenantCostFilter(tenantId: string): Record<string, string[]> {
  return { TagKeyValue: [`user:tenant$${tenantId}`] };
}

/**
 * Tags on every AWS resource created for one tenant: the platform's tags plus `tenant=<id>`, the
 * cost-allocation tag Cost Explorer groups by (tenants/cost-guard/README.md).
 */
export function tenantResourceTags(
  env: EnvironmentConfig,
  tenantId: string,
): { Key: string; Value: string }[] {
  return [...Object.entries(platformTags(env)), ['tenant', tenantId]].map(([Key, Value]) => ({
    Key: Key!,
    Value: Value!,
  }));
}

export interface AwsClients {
  readonly budgets: BudgetsClient;
  readonly secrets: SecretsManagerClient;
  readonly endpoint: string;
}

/** Clients that read AWS_ENDPOINT_URL like every SDK v3 client; they fail fast when nothing listens. */
export function createAwsClients(env: EnvironmentConfig): AwsClients {
  const common = {
    region: process.env.AWS_REGION ?? env.region,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 10_000 },
  };
  return {
    budgets: new BudgetsClient(common),
    secrets: new SecretsManagerClient(common),
    endpoint: process.env.AWS_ENDPOINT_URL ?? `https://*.${common.region}.amazonaws.com`,
  };
}

export function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'name' in error ? String(error.name) : undefined;
}

/** Network failures (no HTTP answer at all) become AwsUnavailableError; service errors pass through. */
export async function callAws<T>(clients: AwsClients, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const answered = typeof error === 'object' && error !== null && '$metadata' in error;
    const status = answered
      ? (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      : undefined;
    if (errorName(error) === 'CredentialsProviderError') {
      throw new AwsUnavailableError(
        `no AWS credentials for ${what}: set AWS_PROFILE or AWS_ACCESS_KEY_ID, or pass --no-aws`,
      );
    }
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (status === undefined) {
      throw new AwsUnavailableError(
        `AWS endpoint ${clients.endpoint} unreachable during ${what}: ${message}`,
      );
    }
    throw new AwsServiceError(`AWS ${what} failed with HTTP ${status}: ${errorName(error)}: ${message}`);
  }
}

function desiredBudget(env: EnvironmentConfig, tenantId: string, tier: Tier) {
  return {
    BudgetName: tenantBudgetName(env, tenantId),
    BudgetType: 'COST' as const,
    TimeUnit: 'MONTHLY' as const,
    BudgetLimit: { Amount: tier.monthlyCostBudgetUsd.toFixed(2), Unit: 'USD' },
    CostFilters: tenantCostFilter(tenantId),
  };
}

export interface BudgetState {
  readonly exists: boolean;
  /** Limit in USD, when it exists. */
  readonly limitUsd?: number;
  /** Notification thresholds present, percent. */
  readonly thresholds: number[];
}

export async function describeTenantBudget(
  clients: AwsClients,
  env: EnvironmentConfig,
  tenantId: string,
): Promise<BudgetState> {
  const name = tenantBudgetName(env, tenantId);
  return callAws(clients, `describing budget ${name}`, async () => {
    try {
      const out = await clients.budgets.send(
        new DescribeBudgetCommand({ AccountId: env.account, BudgetName: name }),
      );
      const notifications = await clients.budgets.send(
        new DescribeNotificationsForBudgetCommand({ AccountId: env.account, BudgetName: name }),
      );
      return {
        exists: true,
        limitUsd: Number(out.Budget?.BudgetLimit?.Amount),
        thresholds: (notifications.Notifications ?? []).map((n) => n.Threshold ?? 0).sort((a, b) => a - b),
      };
    } catch (error) {
      if (errorName(error) === 'NotFoundException') return { exists: false, thresholds: [] };
      throw error;
    }
  });
}

/** What would change to bring the budget to the tier; empty when in sync. */
export function budgetChanges(state: BudgetState, tier: Tier): string[] {
  if (!state.exists) {
    return [
      `create budget ${tier.monthlyCostBudgetUsd} USD/month, alerts at ${BUDGET_THRESHOLDS_PERCENT.join('/')}%`,
    ];
  }
  const changes: string[] = [];
  if (state.limitUsd !== tier.monthlyCostBudgetUsd) {
    changes.push(`budget limit ${state.limitUsd} -> ${tier.monthlyCostBudgetUsd} USD`);
  }
  const missing = BUDGET_THRESHOLDS_PERCENT.filter((t) => !state.thresholds.includes(t));
  if (missing.length > 0) changes.push(`budget alerts missing at ${missing.join('/')}%`);
  return changes;
}

function notification(env: EnvironmentConfig, threshold: number) {
  return {
    Notification: {
      NotificationType: 'ACTUAL' as const,
      ComparisonOperator: 'GREATER_THAN' as const,
      Threshold: threshold,
      ThresholdType: 'PERCENTAGE' as const,
    },
    Subscribers: [{ SubscriptionType: 'SNS' as const, Address: alarmTopicArn(env) }],
  };
}

/** Creates the budget, or brings an existing one's limit to the tier. */
export async function ensureTenantBudget(
  clients: AwsClients,
  env: EnvironmentConfig,
  tenantId: string,
  tier: Tier,
  state: BudgetState,
): Promise<void> {
  const budget = desiredBudget(env, tenantId, tier);
  if (!state.exists) {
    await callAws(clients, `creating budget ${budget.BudgetName}`, async () => {
      try {
        await clients.budgets.send(
          new CreateBudgetCommand({
            AccountId: env.account,
            Budget: budget,
            ResourceTags: tenantResourceTags(env, tenantId),
            NotificationsWithSubscribers: BUDGET_THRESHOLDS_PERCENT.map((t) => notification(env, t)),
          }),
        );
      } catch (error) {
        if (errorName(error) !== 'DuplicateRecordException') throw error;
      }
    });
    return;
  }
  if (state.limitUsd !== tier.monthlyCostBudgetUsd) {
    await callAws(clients, `updating budget ${budget.BudgetName}`, () =>
      clients.budgets.send(new UpdateBudgetCommand({ AccountId: env.account, NewBudget: budget })),
    );
  }
  for (const threshold of BUDGET_THRESHOLDS_PERCENT.filter((t) => !state.thresholds.includes(t))) {
    const { Notification, Subscribers } = notification(env, threshold);
    await callAws(clients, `adding a ${threshold}% alert to budget ${budget.BudgetName}`, () =>
      clients.budgets.send(
        new CreateNotificationCommand({
          AccountId: env.account,
          BudgetName: budget.BudgetName,
          Notification,
          Subscribers,
        }),
      ),
    );
  }
}

import { expectedFailure, formatTable } from './format.ts';
import { type CreateTenantResult, createTenant, type ProvisionerDeps } from './provisioner.ts';
import { TIERS } from './tiers.ts';

export interface OnboardingDemoOptions extends ProvisionerDeps {
  /** Tenant ids are `<prefix>-<tier>`, so a rerun converges on the same tenants. @default 'demo' */
  readonly prefix?: string;
  /** @default 'demo' */
  readonly actor?: string;
}

export interface OnboardingDemoRow {
  readonly tenant: string;
  readonly tier: string;
  /** Catalog status, or `failed`. */
  readonly status: string;
  readonly ready: boolean;
  /** Whether this run issued the tenant's first API key (a rerun issues none). */
  readonly apiKeyIssued: boolean;
  readonly limits: {
    readonly dbConnections: number;
    readonly statementTimeoutMs: number;
    readonly pods: number;
    readonly jobs: number;
    readonly requestsPerSecond: number;
    readonly monthlyCostBudgetUsd: number;
  };
  readonly timingsMs: CreateTenantResult['timings'];
  /** One line, for an expected failure (e.g. AWS unreachable). */
  readonly error?: string;
}

/** Onboards one tenant per tier and returns one row each; expected failures become a row, not a throw. */
export async function runOnboardingDemo(options: OnboardingDemoOptions): Promise<OnboardingDemoRow[]> {
  const prefix = options.prefix ?? 'demo';
  const rows: OnboardingDemoRow[] = [];
  for (const tier of TIERS) {
    const id = `${prefix}-${tier.name}`;
    const limits = {
      dbConnections: tier.database.connectionLimit,
      statementTimeoutMs: tier.database.statementTimeoutMs,
      pods: tier.kubernetes.pods,
      jobs: tier.kubernetes.jobs,
      requestsPerSecond: tier.rateLimit.requestsPerSecond,
      monthlyCostBudgetUsd: tier.monthlyCostBudgetUsd,
    };
    try {
      const result = await createTenant(options, { id, tier: tier.name, actor: options.actor ?? 'demo' });
      rows.push({
        tenant: id,
        tier: tier.name,
        status: result.tenant?.status ?? 'unknown',
        ready: result.ready,
        apiKeyIssued: result.apiKey !== undefined,
        limits,
        timingsMs: result.timings,
      });
    } catch (error) {
      const line = expectedFailure(error);
      if (line === undefined) throw error;
      rows.push({
        tenant: id,
        tier: tier.name,
        status: 'failed',
        ready: false,
        apiKeyIssued: false,
        limits,
        timingsMs: {},
        error: line,
      });
    }
  }
  return rows;
}

/** The demo rows as a text table. */
export function formatOnboardingDemo(rows: readonly OnboardingDemoRow[]): string {
  const ms = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(1));
  const table = formatTable([
    [
      'tenant',
      'tier',
      'status',
      'ready',
      'db conns',
      'stmt timeout',
      'pods/jobs',
      'req/s',
      'budget $',
      'database ms',
      'manifests ms',
      'readiness ms',
      'total ms',
    ],
    ...rows.map((r) => [
      r.tenant,
      r.tier,
      r.status,
      String(r.ready),
      String(r.limits.dbConnections),
      `${r.limits.statementTimeoutMs / 1000}s`,
      `${r.limits.pods}/${r.limits.jobs}`,
      String(r.limits.requestsPerSecond),
      String(r.limits.monthlyCostBudgetUsd),
      ms(r.timingsMs.database),
      ms(r.timingsMs.manifests),
      ms(r.timingsMs.readiness),
      ms(r.timingsMs.total),
    ]),
  ]);
  const errors = rows.filter((r) => r.error).map((r) => `${r.tenant}: ${r.error}`);
  return [table, ...errors].join('\n');
}

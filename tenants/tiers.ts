import { z } from 'zod';

/** Thrown for an unknown tier name; one line, names the value. */
export class TierError extends Error {
  override readonly name = 'TierError';
}

export const TIER_NAMES = ['free', 'starter', 'pro', 'enterprise'] as const;
export type TierName = (typeof TIER_NAMES)[number];

const quantity = z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?$/, 'must be a Kubernetes quantity');

export const tierSchema = z.object({
  name: z.enum(TIER_NAMES),
  /** List price, USD per month. */
  priceUsdMonthly: z.number().min(0),
  /** Infrastructure cost the tenant may cause per month, USD; the cost guard's 100% line. */
  monthlyCostBudgetUsd: z.number().positive(),
  agentMinutesPerMonth: z.number().int().positive(),
  apiCallsPerMonth: z.number().int().positive(),
  /** Price of usage past the included amounts, USD per unit; Stripe bills it through the metered prices. */
  overageUsd: z.object({ agentMinute: z.number().min(0), apiCall: z.number().min(0) }),
  rateLimit: z.object({
    /** Sustained requests per second. */
    requestsPerSecond: z.number().int().positive(),
    /** Extra requests allowed on top of the sustained rate within one second. */
    burst: z.number().int().min(0),
  }),
  concurrentTasks: z.number().int().positive(),
  /** Longest one task may run: its lease says stop, and its Kubernetes Jobs and Pods get this deadline. */
  maxTaskMinutes: z.number().int().positive(),
  database: z.object({
    connectionLimit: z.number().int().positive(),
    statementTimeoutMs: z.number().int().positive(),
    idleInTransactionTimeoutMs: z.number().int().positive(),
    /** PostgreSQL temp_file_limit in kB. */
    tempFileLimitKb: z.number().int().positive(),
    storageGiB: z.number().int().positive(),
  }),
  kubernetes: z.object({
    requestsCpu: quantity,
    limitsCpu: quantity,
    requestsMemory: quantity,
    limitsMemory: quantity,
    pods: z.number().int().positive(),
    jobs: z.number().int().positive(),
    /** LimitRange defaults for a container that declares nothing. */
    containerDefaultRequestCpu: quantity,
    containerDefaultRequestMemory: quantity,
    containerDefaultLimitCpu: quantity,
    containerDefaultLimitMemory: quantity,
    containerMaxCpu: quantity,
    containerMaxMemory: quantity,
  }),
});
export type Tier = z.infer<typeof tierSchema>;

export const unitCostsSchema = z.object({
  /** Our infrastructure cost of one agent-minute, USD. */
  agentMinuteUsd: z.number().positive(),
  /** Our infrastructure cost of one API call, USD. */
  apiCallUsd: z.number().positive(),
});
export type UnitCosts = z.infer<typeof unitCostsSchema>;

export const MIN_GROSS_MARGIN = 0.85;

const catalogSchema = z.object({
  unitCosts: unitCostsSchema,
  tiers: z.array(tierSchema).length(TIER_NAMES.length),
});

const RAW_CATALOG = {
  unitCosts: { agentMinuteUsd: 0.001, apiCallUsd: 0.000001 },
  tiers: [
    {
      name: 'free',
      priceUsdMonthly: 0,
      monthlyCostBudgetUsd: 0.6,
      agentMinutesPerMonth: 60,
      apiCallsPerMonth: 10_000,
      overageUsd: { agentMinute: 0, apiCall: 0 },
      rateLimit: { requestsPerSecond: 5, burst: 5 },
      concurrentTasks: 1,
      maxTaskMinutes: 10,
      database: {
        connectionLimit: 2,
        statementTimeoutMs: 5_000,
        idleInTransactionTimeoutMs: 10_000,
        tempFileLimitKb: 65_536,
        storageGiB: 1,
      },
      kubernetes: {
        requestsCpu: '500m',
        limitsCpu: '1',
        requestsMemory: '512Mi',
        limitsMemory: '1Gi',
        pods: 5,
        jobs: 2,
        containerDefaultRequestCpu: '100m',
        containerDefaultRequestMemory: '128Mi',
        containerDefaultLimitCpu: '250m',
        containerDefaultLimitMemory: '256Mi',
        containerMaxCpu: '500m',
        containerMaxMemory: '512Mi',
      },
    },
    {
      name: 'starter',
      priceUsdMonthly: 9,
      monthlyCostBudgetUsd: 1.2,
      agentMinutesPerMonth: 600,
      apiCallsPerMonth: 100_000,
      overageUsd: { agentMinute: 0.02, apiCall: 0.0001 },
      rateLimit: { requestsPerSecond: 20, burst: 20 },
      concurrentTasks: 3,
      maxTaskMinutes: 30,
      database: {
        connectionLimit: 5,
        statementTimeoutMs: 15_000,
        idleInTransactionTimeoutMs: 30_000,
        tempFileLimitKb: 262_144,
        storageGiB: 5,
      },
      kubernetes: {
        requestsCpu: '2',
        limitsCpu: '4',
        requestsMemory: '2Gi',
        limitsMemory: '4Gi',
        pods: 20,
        jobs: 5,
        containerDefaultRequestCpu: '100m',
        containerDefaultRequestMemory: '128Mi',
        containerDefaultLimitCpu: '500m',
        containerDefaultLimitMemory: '512Mi',
        containerMaxCpu: '1',
        containerMaxMemory: '1Gi',
      },
    },
    {
      name: 'pro',
      priceUsdMonthly: 49,
      monthlyCostBudgetUsd: 7,
      agentMinutesPerMonth: 5_000,
      apiCallsPerMonth: 1_000_000,
      overageUsd: { agentMinute: 0.012, apiCall: 0.00006 },
      rateLimit: { requestsPerSecond: 100, burst: 100 },
      concurrentTasks: 10,
      maxTaskMinutes: 120,
      database: {
        connectionLimit: 20,
        statementTimeoutMs: 30_000,
        idleInTransactionTimeoutMs: 60_000,
        tempFileLimitKb: 1_048_576,
        storageGiB: 50,
      },
      kubernetes: {
        requestsCpu: '8',
        limitsCpu: '16',
        requestsMemory: '16Gi',
        limitsMemory: '32Gi',
        pods: 100,
        jobs: 20,
        containerDefaultRequestCpu: '250m',
        containerDefaultRequestMemory: '256Mi',
        containerDefaultLimitCpu: '1',
        containerDefaultLimitMemory: '1Gi',
        containerMaxCpu: '4',
        containerMaxMemory: '8Gi',
      },
    },
    {
      name: 'enterprise',
      priceUsdMonthly: 149,
      monthlyCostBudgetUsd: 22,
      agentMinutesPerMonth: 15_000,
      apiCallsPerMonth: 5_000_000,
      overageUsd: { agentMinute: 0.01, apiCall: 0.00004 },
      rateLimit: { requestsPerSecond: 500, burst: 500 },
      concurrentTasks: 50,
      maxTaskMinutes: 480,
      database: {
        connectionLimit: 60,
        statementTimeoutMs: 60_000,
        idleInTransactionTimeoutMs: 60_000,
        tempFileLimitKb: 4_194_304,
        storageGiB: 250,
      },
      kubernetes: {
        requestsCpu: '32',
        limitsCpu: '64',
        requestsMemory: '64Gi',
        limitsMemory: '128Gi',
        pods: 400,
        jobs: 100,
        containerDefaultRequestCpu: '250m',
        containerDefaultRequestMemory: '256Mi',
        containerDefaultLimitCpu: '2',
        containerDefaultLimitMemory: '2Gi',
        containerMaxCpu: '8',
        containerMaxMemory: '16Gi',
      },
    },
  ],
};

const CATALOG = catalogSchema.parse(RAW_CATALOG);

export const UNIT_COSTS: UnitCosts = CATALOG.unitCosts;

/** Every tier, in ascending order of price. */
export const TIERS: readonly Tier[] = CATALOG.tiers;

export function isTierName(value: string): value is TierName {
  return (TIER_NAMES as readonly string[]).includes(value);
}

/** Returns the tier, or throws TierError naming the bad value and the valid ones. */
export function getTier(name: string): Tier {
  const tier = TIERS.find((t) => t.name === name);
  if (!tier) throw new TierError(`unknown tier '${name}': expected one of ${TIER_NAMES.join(', ')}`);
  return tier;
}

/** Our cost of a tenant's metered usage, USD, priced from the catalog's unit costs. */
export function meteredCostUsd(usage: { agentMinutes: number; apiCalls: number }): number {
  return usage.agentMinutes * UNIT_COSTS.agentMinuteUsd + usage.apiCalls * UNIT_COSTS.apiCallUsd;
}

/** Gross margin of a paid tier when the tenant spends its whole cost budget. */
export function grossMarginAtBudget(tier: Tier): number {
  return (tier.priceUsdMonthly - tier.monthlyCostBudgetUsd) / tier.priceUsdMonthly;
}

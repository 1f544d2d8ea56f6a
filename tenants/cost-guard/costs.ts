import {
  CostExplorerClient,
  GetCostAndUsageCommand,
  type GetCostAndUsageCommandInput,
} from '@aws-sdk/client-cost-explorer';
import { z } from 'zod';
import { tenantIdProblem } from '../tenant-id.ts';

/** Thrown when Cost Explorer answers with something the guard cannot trust; one line naming the field. */
export class CostDataError extends Error {
  override readonly name = 'CostDataError';
}

/** Cost Explorer's list price per request, USD. */
export const CE_REQUEST_COST_USD = 0.01;
export const TENANT_TAG_KEY = 'tenant';
export const COST_METRIC = 'UnblendedCost';

const amountText = z.string().regex(/^\d+(\.\d+)?([eE][-+]?\d+)?$/, 'must be a non-negative decimal amount');

const tagKey = z
  .string()
  .regex(/^tenant\$/, "must be a 'tenant$<id>' tag key")
  .refine((key) => {
    const id = key.slice(TENANT_TAG_KEY.length + 1);
    return id === '' || tenantIdProblem(id) === undefined;
  }, "must name a valid tenant id after 'tenant$'");

const pageSchema = z.object({
  NextPageToken: z.string().min(1).optional(),
  ResultsByTime: z.array(
    z.object({
      TimePeriod: z.object({ Start: z.iso.date(), End: z.iso.date() }),
      Estimated: z.boolean().optional(),
      Groups: z
        .array(
          z.object({
            Keys: z.tuple([tagKey]),
            Metrics: z.object({
              [COST_METRIC]: z.object({
                Amount: amountText,
                Unit: z.literal('USD', { error: "must be 'USD'" }),
              }),
            }),
          }),
        )
        .default([]),
    }),
  ),
});

/** The month-to-date costs of one guard run, as stored in its snapshot. */
export const costInputsSchema = z.object({
  /** First day of the period and the exclusive end day, as sent to Cost Explorer. */
  start: z.iso.date(),
  end: z.iso.date(),
  fetchedAt: z.iso.datetime(),
  /** Why the data cannot be used (throttled, missing page, partial period); null when complete. */
  problem: z.string().nullable(),
  /** True when any result was marked Estimated (every day of the open month is, until the invoice). */
  estimated: z.boolean(),
  /** The latest day that carries any cost, tagged or not; null when no day does yet. */
  latestCostDay: z.iso.date().nullable(),
  /** The time the data reaches: the end of `latestCostDay`, never later than fetchedAt. */
  dataTime: z.iso.datetime().nullable(),
  pages: z.number().int().min(0),
  requests: z.number().int().min(0),
  /** USD per tenant id, for tenants with tagged costs. */
  byTenant: z.record(z.string(), z.number().min(0)),
  /** USD with no `tenant` tag: kept visible, never attributed to anyone. */
  untaggedUsd: z.number().min(0),
});
export type CostInputs = z.infer<typeof costInputsSchema>;

export interface FetchCostsOptions {
  /** The CE client. @default - a client with SDK retries off, so every attempt is counted here */
  readonly client?: CostExplorerClient;
  /** Attempts per page before giving up on throttling. @default 4 */
  readonly maxAttempts?: number;
  /** First backoff delay; doubles per attempt, with full jitter. @default 500 */
  readonly baseDelayMs?: number;
  /** Upper bound of one backoff delay. @default 8000 */
  readonly maxDelayMs?: number;
  /** @default - setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

const THROTTLING_ERRORS = new Set([
  'ThrottlingException',
  'LimitExceededException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);

function isThrottling(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: string; $retryable?: { throttling?: boolean } };
  return THROTTLING_ERRORS.has(e.name ?? '') || e.$retryable?.throttling === true;
}

function formatIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  let value: unknown = raw;
  for (const key of issue.path) {
    value =
      value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  }
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  return `'${issue.path.join('.')}' (${shown}) ${issue.message}`;
}

/** Validates one GetCostAndUsage page; throws CostDataError naming the first bad field and its value. */
export function parseCostPage(raw: unknown, page: number): z.infer<typeof pageSchema> {
  const result = pageSchema.safeParse(raw);
  if (!result.success) {
    throw new CostDataError(
      `Cost Explorer page ${page} rejected: ${formatIssue(result.error.issues[0]!, raw)}; no action taken`,
    );
  }
  return result.data;
}

const DAY_MS = 86_400_000;

function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00.000Z`) + DAY_MS).toISOString().slice(0, 10);
}

/**
 * The query the guard sends: month to date (UTC), one result per day, grouped by the tenant tag.
 * Daily results give both the month's total per tenant and the latest day that carries cost,
 * which is how fresh the data really is.
 */
export function costQuery(now: Date): GetCostAndUsageCommandInput {
  const start = `${now.toISOString().slice(0, 7)}-01`;
  return {
    TimePeriod: { Start: start, End: nextDay(now.toISOString().slice(0, 10)) },
    Granularity: 'DAILY',
    Metrics: [COST_METRIC],
    GroupBy: [{ Type: 'TAG', Key: TENANT_TAG_KEY }],
  };
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const cause = (error as { cause?: unknown }).cause;
  const detail = error.message || (cause instanceof Error ? cause.message : '') || 'no message';
  return `${error.name}${status ? ` (HTTP ${status})` : ''}: ${detail.split('\n')[0]}`;
}

/**
 * Month-to-date cost per tenant: ONE query per run, every page followed. Throttling is retried
 * with bounded exponential backoff; beyond the bound the result is marked throttled (unknown),
 * never zero. Malformed answers, and a Cost Explorer that cannot be reached or refuses the call,
 * throw CostDataError: nothing was stored or decided yet.
 */
export async function fetchCosts(now: Date, options: FetchCostsOptions = {}): Promise<CostInputs> {
  // Cost Explorer answers from us-east-1 only; retries are counted here, not in the SDK.
  const client = options.client ?? new CostExplorerClient({ region: 'us-east-1', maxAttempts: 1 });
  const maxAttempts = options.maxAttempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 8_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const query = costQuery(now);
  const start = query.TimePeriod!.Start!;
  const end = query.TimePeriod!.End!;
  const byTenant: Record<string, number> = {};
  let untaggedUsd = 0;
  let estimated = false;
  let firstDay: string | null = null;
  let latestCostDay: string | null = null;
  let requests = 0;
  let pages = 0;
  let problem: string | null = null;
  let token: string | undefined;

  pageLoop: do {
    let raw: unknown;
    for (let attempt = 1; ; attempt++) {
      requests++;
      try {
        const { $metadata: _, ...body } = await client.send(
          new GetCostAndUsageCommand({ ...query, ...(token ? { NextPageToken: token } : {}) }),
        );
        raw = body;
        break;
      } catch (error) {
        if (!isThrottling(error)) {
          throw new CostDataError(
            `Cost Explorer GetCostAndUsage failed on page ${pages + 1}: ${describeFailure(error)}; no action taken`,
          );
        }
        if (attempt >= maxAttempts) {
          problem = `Cost Explorer throttled page ${pages + 1} ${attempt} times`;
          break pageLoop;
        }
        await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
      }
    }
    pages++;
    const page = parseCostPage(raw, pages);
    if (page.ResultsByTime.length === 0) {
      problem = `Cost Explorer page ${pages} is missing (no results)`;
      break;
    }
    for (const result of page.ResultsByTime) {
      const day = result.TimePeriod.Start;
      if (day < start || day >= end || result.TimePeriod.End !== nextDay(day)) {
        problem = `Cost Explorer returned ${day} to ${result.TimePeriod.End}, not one day between ${start} and ${end}`;
        break pageLoop;
      }
      estimated ||= result.Estimated === true;
      if (firstDay === null || day < firstDay) firstDay = day;
      let dayUsd = 0;
      for (const group of result.Groups) {
        const id = group.Keys[0].slice(TENANT_TAG_KEY.length + 1);
        const usd = Number(group.Metrics[COST_METRIC]!.Amount);
        dayUsd += usd;
        if (id === '') untaggedUsd += usd;
        else byTenant[id] = (byTenant[id] ?? 0) + usd;
      }
      if (dayUsd > 0 && (latestCostDay === null || day > latestCostDay)) latestCostDay = day;
    }
    token = page.NextPageToken;
  } while (token);

  if (problem === null && firstDay !== start) {
    problem = `Cost Explorer returned a partial period starting ${firstDay}, not ${start}`;
  }
  const reachesMs = latestCostDay === null ? null : Date.parse(`${nextDay(latestCostDay)}T00:00:00.000Z`);
  return {
    start,
    end,
    fetchedAt: now.toISOString(),
    problem,
    estimated,
    latestCostDay,
    dataTime: reachesMs === null ? null : new Date(Math.min(reachesMs, now.getTime())).toISOString(),
    pages,
    requests,
    byTenant,
    untaggedUsd,
  };
}

import type pg from 'pg';
import Stripe from 'stripe';
import type { EnvironmentConfig } from '../config/environments.ts';
import { BillingBusyError, BillingConfigError } from './errors.ts';
import { bucketIdentifier, hourLabel, MAX_REVISION, revisionTimestamp } from './identifiers.ts';
import { type MeterEvent, MeterEventStream, STREAM_BATCH_LIMIT } from './meter-stream.ts';
import { METERS, type MeterKey } from './meters.ts';
import { formatQuantity, parseQuantity } from './quantity.ts';
import { DEFAULT_RETRY, describeStripeError, type RetryPolicy } from './retry.ts';
import type { HourlyUsage, HourRange, UsageSource } from './usage-source.ts';

const HOUR_MS = 3600_000;
/** Stripe takes event timestamps within the past 35 calendar days; keep an hour of margin. */
export const STRIPE_PAST_LIMIT_MS = 35 * 24 * HOUR_MS - HOUR_MS;
/** An hour is exported once it is closed and this long has passed, so reports still in flight land in it. */
export const SETTLE_MS = 5 * 60_000;
/** Advisory lock held by an export for its whole run: two exports never plan from the same state. */
export const EXPORT_LOCK = [7_310_100, 1] as const;

export type ProblemKind = 'unknown-tenant' | 'no-customer' | 'refused' | 'stripe' | 'too-old';

/** Something the run reported and skipped; `refused` and `stripe` make the run fail. */
export interface ExportProblem {
  readonly tenantId: string;
  readonly kind: ProblemKind;
  readonly message: string;
}

export interface ExportProgress {
  tenantsDone: number;
  tenantsTotal: number;
  /** First revisions of buckets. */
  events: number;
  /** Later revisions: a late increase of an hour already sent. */
  corrections: number;
  /** Buckets a killed run had committed as pending, sent again with the same identifier and value. */
  replays: number;
  batches: number;
  requests: number;
}

export interface ExportObserver {
  /** After each batch is committed as sent; a throw stops the run like a crash (tests use it). */
  afterBatch?(progress: Readonly<ExportProgress>): void | Promise<void>;
  onProgress?(progress: Readonly<ExportProgress>): void;
}

export interface ExportDeps {
  readonly pool: pg.Pool;
  /** Null only for a dry run, which reads the catalog and sends nothing. */
  readonly stripe: Stripe | null;
  readonly env: EnvironmentConfig;
  readonly usage: UsageSource;
  /** @default DEFAULT_RETRY */
  readonly retry?: RetryPolicy;
  /** @default - the system clock */
  readonly now?: () => Date;
  readonly observer?: ExportObserver;
  /** Tenants exported at the same time. @default 4 */
  readonly concurrency?: number;
}

export interface ExportOptions {
  /** First hour to consider. @default - Stripe's 35-day limit */
  readonly since?: Date;
  readonly dryRun?: boolean;
  /** Only these tenants. @default - every tenant with usage in the range */
  readonly tenants?: readonly string[];
}

export interface ExportResult extends ExportProgress {
  readonly runId: number | null;
  readonly dryRun: boolean;
  readonly since: string;
  readonly until: string;
  readonly problems: ExportProblem[];
  /** False when a row was refused or Stripe refused a tenant. */
  readonly ok: boolean;
}

interface Bucket {
  readonly meter: MeterKey;
  readonly hour: Date;
  readonly revision: number;
  readonly quantity: bigint;
  readonly identifier: string;
  readonly state: 'pending' | 'sent';
}

/** One event to send: a first revision, a correction, or the replay of a pending one. */
interface Planned extends Bucket {
  readonly kind: 'event' | 'correction' | 'replay';
}

const KIND_COUNTER = { event: 'events', correction: 'corrections', replay: 'replays' } as const;

const bucketKey = (meter: string, hour: Date) => `${meter}|${hour.getTime()}`;

/** Hour floor in UTC. */
export const floorHour = (t: Date) => new Date(Math.floor(t.getTime() / HOUR_MS) * HOUR_MS);

/** The hours an export at `now` may send: from `since` (no earlier than Stripe accepts) to the last closed hour. */
export function exportRange(now: Date, since?: Date): HourRange {
  const earliest = new Date(Math.ceil((now.getTime() - STRIPE_PAST_LIMIT_MS) / HOUR_MS) * HOUR_MS);
  const to = floorHour(new Date(now.getTime() - SETTLE_MS));
  const from = since ? new Date(Math.ceil(since.getTime() / HOUR_MS) * HOUR_MS) : earliest;
  return { from, to };
}

/** Why one usage row cannot be billed, or null when it is sound. */
function rowProblem(row: HourlyUsage, range: HourRange): string | null {
  if (!(row.hour instanceof Date) || Number.isNaN(row.hour.getTime()) || row.hour.getTime() % HOUR_MS !== 0)
    return `hour ${Number.isNaN(new Date(row.hour).getTime()) ? String(row.hour) : new Date(row.hour).toISOString()} is not a whole UTC hour`;
  if (row.hour >= range.to) return `hour ${hourLabel(row.hour)} is not closed yet`;
  for (const meter of METERS) {
    const text = row[meter.usage];
    if (parseQuantity(text) === null)
      return `${meter.key} ${JSON.stringify(text)} is not a non-negative quantity`;
  }
  if (!/^\d+$/.test(row.apiCalls)) return `api_calls ${JSON.stringify(row.apiCalls)} is not a whole number`;
  return null;
}

/**
 * Compares one tenant's usage with what was sent and returns the events to send: pending buckets first
 * (replayed as they were committed), then first revisions and corrections. A bucket whose usage fell
 * after it was billed is refused: metering only grows, so that row was changed by hand.
 */
export function planTenant(
  env: string,
  tenantId: string,
  rows: readonly HourlyUsage[],
  buckets: ReadonlyMap<string, Bucket>,
  range: HourRange,
  oldest: Date,
): { planned: Planned[]; problems: ExportProblem[] } {
  const planned: Planned[] = [];
  const problems: ExportProblem[] = [];
  const refuse = (message: string) =>
    problems.push({ tenantId, kind: 'refused', message: `tenant '${tenantId}': ${message}` });
  const tooOld: string[] = [];
  for (const bucket of buckets.values()) {
    if (bucket.state !== 'pending') continue;
    if (bucket.hour < oldest) tooOld.push(`${bucket.meter} ${hourLabel(bucket.hour)}`);
    else planned.push({ ...bucket, kind: 'replay' });
  }
  for (const row of rows) {
    const problem = rowProblem(row, range);
    if (problem) {
      refuse(`usage row refused: ${problem}`);
      continue;
    }
    for (const meter of METERS) {
      const quantity = parseQuantity(row[meter.usage])!;
      const held = buckets.get(bucketKey(meter.key, row.hour));
      if (held?.state === 'pending') continue;
      if (held && quantity === held.quantity) continue;
      if (!held && quantity === 0n) continue;
      if (held && quantity < held.quantity) {
        refuse(
          `${meter.key} for ${hourLabel(row.hour)} fell from ${formatQuantity(held.quantity)} to ${formatQuantity(quantity)} after it was billed: row refused`,
        );
        continue;
      }
      const revision = held ? held.revision + 1 : 0;
      if (revision > MAX_REVISION) {
        refuse(`${meter.key} for ${hourLabel(row.hour)} has had ${MAX_REVISION} corrections: row refused`);
        continue;
      }
      if (row.hour < oldest) {
        tooOld.push(`${meter.key} ${hourLabel(row.hour)}`);
        continue;
      }
      planned.push({
        meter: meter.key,
        hour: row.hour,
        revision,
        quantity,
        identifier: bucketIdentifier(env, tenantId, meter.key, row.hour, revision),
        state: 'pending',
        kind: held ? 'correction' : 'event',
      });
    }
  }
  if (tooOld.length > 0) {
    problems.push({
      tenantId,
      kind: 'too-old',
      message: `tenant '${tenantId}': ${tooOld.length} bucket(s) older than Stripe's 35-day limit not sent (first: ${tooOld[0]}); adjust the invoice by hand`,
    });
  }
  return { planned, problems };
}

function toEvent(customer: string, b: Planned): MeterEvent {
  return {
    event_name: b.meter,
    identifier: b.identifier,
    timestamp: revisionTimestamp(b.hour, b.revision).toISOString(),
    payload: { stripe_customer_id: customer, value: formatQuantity(b.quantity) },
  };
}

async function loadBuckets(db: pg.Pool, tenantId: string, range: HourRange): Promise<Map<string, Bucket>> {
  const { rows } = await db.query<{
    meter: MeterKey;
    hour: Date;
    revision: number;
    milli: string;
    identifier: string;
    state: 'pending' | 'sent';
  }>(
    `SELECT meter, hour, revision, (quantity * 1000)::bigint::text AS milli, identifier, state
       FROM control.billing_buckets
      WHERE tenant_id = $1 AND ((hour >= $2 AND hour < $3) OR state = 'pending')`,
    [tenantId, range.from, range.to],
  );
  return new Map(rows.map((r) => [bucketKey(r.meter, r.hour), { ...r, quantity: BigInt(r.milli) }] as const));
}

const PENDING_SQL = `
INSERT INTO control.billing_buckets AS b
  (tenant_id, meter, hour, revision, quantity, identifier, stripe_customer_id, state, run_id)
SELECT $1, t.meter, t.hour, t.revision, t.quantity, t.identifier, $2, 'pending', $3
  FROM unnest($4::text[], $5::timestamptz[], $6::int[], $7::numeric[], $8::text[])
    AS t(meter, hour, revision, quantity, identifier)
ON CONFLICT (tenant_id, meter, hour) DO UPDATE
  SET revision = EXCLUDED.revision, quantity = EXCLUDED.quantity, identifier = EXCLUDED.identifier,
      stripe_customer_id = EXCLUDED.stripe_customer_id, state = 'pending', run_id = EXCLUDED.run_id`;

// Marks a batch sent and records the run's progress in one statement. It runs on a session with
// asynchronous commit: losing it in a crash leaves the batch pending, and a replay is dropped by Stripe.
const SENT_SQL = `
WITH sent AS (
  UPDATE control.billing_buckets b
     SET state = 'sent', sent_at = now(), first_sent_at = coalesce(b.first_sent_at, now())
    FROM unnest($2::text[]) AS t(identifier)
   WHERE b.tenant_id = $1 AND b.identifier = t.identifier
  RETURNING 1
)
UPDATE control.billing_export_runs SET progress = $4 WHERE id = $3 AND (SELECT count(*) FROM sent) >= 0`;

type Query = (text: string, values: unknown[]) => Promise<unknown>;

/** Runs queries on one client one after another: batches of several tenants share the session. */
function serialized(client: pg.ClientBase): Query {
  let tail: Promise<unknown> = Promise.resolve();
  return (text, values) => {
    const next = tail.then(() => client.query(text, values));
    tail = next.catch(() => {});
    return next;
  };
}

interface Link {
  readonly customer: string | null;
  readonly known: boolean;
}

async function loadLinks(db: pg.Pool, tenantIds: readonly string[]): Promise<Map<string, Link>> {
  const { rows } = await db.query<{ id: string; customer: string | null }>(
    `SELECT t.id, c.stripe_customer_id AS customer
       FROM control.tenants t LEFT JOIN control.billing_customers c ON c.tenant_id = t.id
      WHERE t.id = ANY($1)`,
    [tenantIds],
  );
  const links = new Map<string, Link>(tenantIds.map((id) => [id, { customer: null, known: false }]));
  for (const r of rows) links.set(r.id, { customer: r.customer, known: true });
  return links;
}

/**
 * Sends every closed hour of metered usage to Stripe as meter events on the v2 stream, 100 a request, one
 * tenant per request so a refusal stops only that tenant. Each batch is committed as pending before it is
 * sent and as sent after, so a killed run resumes where it stopped and sends each bucket exactly once.
 */
export async function exportUsage(deps: ExportDeps, options: ExportOptions = {}): Promise<ExportResult> {
  const dryRun = options.dryRun ?? false;
  if (!dryRun && deps.stripe === null)
    throw new BillingConfigError('STRIPE_API_KEY is not set: billing needs the Stripe secret key');
  const clock = deps.now ?? (() => new Date());
  const now = clock();
  const range = exportRange(now, options.since);
  const oldest = new Date(now.getTime() - STRIPE_PAST_LIMIT_MS);
  const progress: ExportProgress = {
    tenantsDone: 0,
    tenantsTotal: 0,
    events: 0,
    corrections: 0,
    replays: 0,
    batches: 0,
    requests: 0,
  };
  const problems: ExportProblem[] = [];
  // Holds the run's lock, and marks batches sent with asynchronous commit (see SENT_SQL).
  const session = await deps.pool.connect();
  let runId: number | null = null;
  try {
    const { rows: locked } = await session.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1, $2) AS ok',
      [...EXPORT_LOCK],
    );
    if (!locked[0]?.ok)
      throw new BillingBusyError('another billing export is running: try again when it ends');
    await session.query('SET synchronous_commit = off');
    const markSent = serialized(session);
    const { rows: pendingTenants } = await deps.pool.query<{ tenant_id: string }>(
      "SELECT DISTINCT tenant_id FROM control.billing_buckets WHERE state = 'pending'",
    );
    const tenants = options.tenants
      ? [...options.tenants]
      : [
          ...new Set([...(await deps.usage.tenants(range)), ...pendingTenants.map((r) => r.tenant_id)]),
        ].sort();
    progress.tenantsTotal = tenants.length;
    const links = await loadLinks(deps.pool, tenants);
    if (!dryRun) {
      await deps.pool.query(
        "UPDATE control.billing_export_runs SET status = 'interrupted', finished_at = now() WHERE status = 'running'",
      );
      const { rows } = await deps.pool.query<{ id: string }>(
        'INSERT INTO control.billing_export_runs (since, until) VALUES ($1, $2) RETURNING id',
        [range.from, range.to],
      );
      runId = Number(rows[0]!.id);
    }
    let failure: { error: unknown } | null = null;
    const count = (done: readonly Planned[]) => {
      for (const b of done) progress[KIND_COUNTER[b.kind]] += 1;
    };
    const stream = deps.stripe
      ? new MeterEventStream(deps.stripe, deps.retry ?? DEFAULT_RETRY, () => clock().getTime())
      : null;
    const exportOne = async (tenantId: string) => {
      const link = links.get(tenantId)!;
      if (!link.known) {
        problems.push({
          tenantId,
          kind: 'unknown-tenant',
          message: `tenant '${tenantId}' is not in the catalog: skipped`,
        });
        return;
      }
      if (!link.customer) {
        problems.push({
          tenantId,
          kind: 'no-customer',
          message: `tenant '${tenantId}' has no Stripe customer: skipped (link one with \`npm run tenant -- create ${tenantId} --tier <tier> --stripe-customer <cus_…>\`)`,
        });
        return;
      }
      // Two passes at most: replays of a killed run first, then whatever grew since they were planned.
      for (let pass = 0; pass < 2; pass += 1) {
        const [rows, buckets] = await Promise.all([
          deps.usage.hours(tenantId, range),
          loadBuckets(deps.pool, tenantId, range),
        ]);
        const plan = planTenant(deps.env.name, tenantId, rows, buckets, range, oldest);
        if (pass === 0) problems.push(...plan.problems);
        if (plan.planned.length === 0) return;
        if (dryRun) {
          count(plan.planned);
          return;
        }
        for (let i = 0; i < plan.planned.length && failure === null; i += STREAM_BATCH_LIMIT) {
          const batch = plan.planned.slice(i, i + STREAM_BATCH_LIMIT);
          try {
            await sendBatch(
              deps.pool,
              markSent,
              stream!,
              { tenantId, customer: link.customer, runId: runId! },
              batch,
              () => {
                count(batch);
                progress.batches += 1;
                progress.requests = stream!.requests;
                return progress;
              },
            );
          } catch (error) {
            // A refused key refuses every tenant: stop the run rather than repeat it per tenant.
            if (
              !(error instanceof Stripe.errors.StripeError) ||
              error.statusCode === 401 ||
              error.statusCode === 403
            )
              throw error;
            problems.push({
              tenantId,
              kind: 'stripe',
              message: `tenant '${tenantId}' stopped: ${describeStripeError(error)}`,
            });
            return;
          }
          await deps.observer?.afterBatch?.(progress);
          deps.observer?.onProgress?.(progress);
        }
        if (!plan.planned.some((b) => b.kind === 'replay')) return;
      }
    };
    const queue = [...tenants];
    // The first failure stops every worker before its next batch; the run waits for all of them, so no
    // query runs on the session after it is released.
    const worker = async () => {
      for (
        let tenantId = queue.shift();
        tenantId !== undefined && failure === null;
        tenantId = queue.shift()
      ) {
        try {
          await exportOne(tenantId);
        } catch (error) {
          failure ??= { error };
          return;
        }
        progress.tenantsDone += 1;
        deps.observer?.onProgress?.(progress);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, deps.concurrency ?? 4) }, worker));
    if (failure !== null) {
      const { error } = failure;
      if (runId !== null) {
        await deps.pool
          .query(
            "UPDATE control.billing_export_runs SET status = 'failed', finished_at = now(), progress = $2 WHERE id = $1",
            [runId, JSON.stringify(progress)],
          )
          .catch(() => {});
      }
      throw error;
    }
    if (stream) progress.requests = stream.requests;
    problems.sort((a, b) => a.tenantId.localeCompare(b.tenantId) || a.kind.localeCompare(b.kind));
    const ok = !problems.some((p) => p.kind === 'refused' || p.kind === 'stripe');
    if (runId !== null) {
      await deps.pool.query(
        'UPDATE control.billing_export_runs SET status = $2, finished_at = now(), progress = $3, problems = $4 WHERE id = $1',
        [runId, ok ? 'done' : 'failed', JSON.stringify(progress), JSON.stringify(problems)],
      );
    }
    return {
      ...progress,
      runId,
      dryRun,
      since: range.from.toISOString(),
      until: range.to.toISOString(),
      problems,
      ok,
    };
  } finally {
    await session.query('SELECT pg_advisory_unlock($1, $2)', [...EXPORT_LOCK]).catch(() => {});
    await session.query('RESET synchronous_commit').catch(() => {});
    session.release();
  }
}

/** Pending, sent to Stripe, then sent: the state a rerun resumes from is committed around every request. */
async function sendBatch(
  db: pg.Pool,
  markSent: Query,
  stream: MeterEventStream,
  to: { readonly tenantId: string; readonly customer: string; readonly runId: number },
  batch: readonly Planned[],
  sent: () => ExportProgress,
): Promise<void> {
  const fresh = batch.filter((b) => b.kind !== 'replay');
  if (fresh.length > 0) {
    await db.query(PENDING_SQL, [
      to.tenantId,
      to.customer,
      to.runId,
      fresh.map((b) => b.meter),
      fresh.map((b) => b.hour),
      fresh.map((b) => b.revision),
      fresh.map((b) => formatQuantity(b.quantity)),
      fresh.map((b) => b.identifier),
    ]);
  }
  await stream.send(batch.map((b) => toEvent(to.customer, b)));
  await markSent(SENT_SQL, [to.tenantId, batch.map((b) => b.identifier), to.runId, JSON.stringify(sent())]);
}

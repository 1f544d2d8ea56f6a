// A tenant may `SET statement_timeout = 0` in its session or on its own role, so the tier's database
// limits are only defaults inside PostgreSQL. This watchdog enforces them from outside with authority:
// it reads pg_stat_activity and cancels a tenant's statement, or ends its idle transaction, once it runs
// past the tier's limit. It needs pg_signal_backend (or superuser): on RDS the master user, a member of
// rds_superuser, may cancel and terminate other roles' backends
// (https://repost.aws/knowledge-center/rds-cancel-long-running-queries).
import type pg from 'pg';
import { z } from 'zod';
import { CELL_GROUP_SUFFIX } from './cells.ts';
import { getTier } from './tiers.ts';

/**
 * Where the watchdog looks: the cell whose backends it signals, and the catalog that says which of them are
 * tenants and of which tier. The catalog is a database of its own, so the two are joined here, not in SQL.
 */
export interface WatchedDatabases {
  readonly catalog: pg.Pool | pg.ClientBase;
  readonly cell: pg.Pool | pg.ClientBase;
}

/** What the watchdog did (or, in a dry run, would do) to one backend. */
export interface BackendAction {
  readonly pid: number;
  readonly tenant: string;
  readonly tier: string;
  /** cancel: the statement is cancelled, the session stays; terminate: the idle transaction's session ends. */
  readonly action: 'cancel' | 'terminate';
  readonly ageMs: number;
  readonly limitMs: number;
  /** False when the backend had already finished, or the run was a dry run. */
  readonly signalled: boolean;
}

export interface WatchdogOptions {
  /**
   * Extra time past the tier's limit before the watchdog acts, so PostgreSQL's own timeout (when the
   * tenant left it alone) fires first and the watchdog only catches sessions that lifted it.
   * @default 1000
   */
  readonly graceMs?: number;
  /** List what would be signalled and signal nothing. @default false */
  readonly dryRun?: boolean;
}

/** A tenant backend as pg_stat_activity shows it, with its tier from the catalog. */
export interface TenantBackend {
  readonly pid: number;
  readonly tenant: string;
  readonly tier: string;
  readonly state: string;
  /** Since the current statement started (active) or the last state change (idle in transaction). */
  readonly queryMs: number;
  readonly stateMs: number;
  /** Identifies the statement, so a signal never hits a newer statement of the same backend (text keeps microseconds). */
  readonly queryStart: string;
}

const backendRow = z.object({
  pid: z.number().int(),
  tenant: z.string(),
  state: z.string(),
  query_ms: z.coerce.number(),
  state_ms: z.coerce.number(),
  query_start: z.string(),
});

/** The backends past their tier's limit and what to do with each. Pure, so the rules are tested without waiting. */
export function backendsPastLimit(
  backends: readonly TenantBackend[],
  graceMs: number,
): Omit<BackendAction, 'signalled'>[] {
  const actions: Omit<BackendAction, 'signalled'>[] = [];
  for (const b of backends) {
    const limits = getTier(b.tier).database;
    if (b.state === 'active' && b.queryMs > limits.statementTimeoutMs + graceMs) {
      actions.push({
        pid: b.pid,
        tenant: b.tenant,
        tier: b.tier,
        action: 'cancel',
        ageMs: b.queryMs,
        limitMs: limits.statementTimeoutMs,
      });
    } else if (
      b.state.startsWith('idle in transaction') &&
      b.stateMs > limits.idleInTransactionTimeoutMs + graceMs
    ) {
      actions.push({
        pid: b.pid,
        tenant: b.tenant,
        tier: b.tier,
        action: 'terminate',
        ageMs: b.stateMs,
        limitMs: limits.idleInTransactionTimeoutMs,
      });
    }
  }
  return actions;
}

/**
 * Client backends of the cell's tenant roles (members of the cell's group role whose name is a catalog
 * tenant), with each tenant's tier from the catalog.
 */
export async function listTenantBackends(db: WatchedDatabases): Promise<TenantBackend[]> {
  const { rows } = await db.cell.query(
    `SELECT a.pid, a.usename AS tenant, a.state,
            floor(extract(epoch FROM clock_timestamp() - a.query_start) * 1000) AS query_ms,
            floor(extract(epoch FROM clock_timestamp() - a.state_change) * 1000) AS state_ms,
            a.query_start::text AS query_start
       FROM pg_stat_activity a
      WHERE a.backend_type = 'client backend'
        AND a.pid <> pg_backend_pid()
        AND a.query_start IS NOT NULL
        AND a.state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
        AND a.usesysid IN (SELECT m.member FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                            WHERE g.rolname = current_database() || $1)`,
    [CELL_GROUP_SUFFIX],
  );
  const backends = rows.map((row) => backendRow.parse(row));
  if (backends.length === 0) return [];
  const tiers = await db.catalog.query<{ id: string; tier: string }>(
    'SELECT id, tier FROM control.tenants WHERE id = ANY($1)',
    [[...new Set(backends.map((b) => b.tenant))]],
  );
  const tierOf = new Map(tiers.rows.map((t) => [t.id, t.tier]));
  return backends.flatMap((r) => {
    const tier = tierOf.get(r.tenant);
    if (tier === undefined) return [];
    return [
      {
        pid: r.pid,
        tenant: r.tenant,
        tier,
        state: r.state,
        queryMs: r.query_ms,
        stateMs: r.state_ms,
        queryStart: r.query_start,
      },
    ];
  });
}

/** One pass: finds tenant backends past their tier's limits and cancels or terminates them. */
export async function enforceDatabaseLimits(
  db: WatchedDatabases,
  options: WatchdogOptions = {},
): Promise<BackendAction[]> {
  const backends = await listTenantBackends(db);
  const starts = new Map(backends.map((b) => [b.pid, b.queryStart]));
  const results: BackendAction[] = [];
  for (const action of backendsPastLimit(backends, options.graceMs ?? 1000)) {
    if (options.dryRun) {
      results.push({ ...action, signalled: false });
      continue;
    }
    const fn = action.action === 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
    // Signals only if the backend still runs the statement seen above.
    const { rows } = await db.cell.query<{ signalled: boolean }>(
      `SELECT ${fn}(pid) AS signalled FROM pg_stat_activity WHERE pid = $1 AND query_start::text = $2`,
      [action.pid, starts.get(action.pid)],
    );
    results.push({ ...action, signalled: rows[0]?.signalled === true });
  }
  return results;
}

export interface WatchOptions extends WatchdogOptions {
  /** Time between passes. @default 1000 */
  readonly intervalMs?: number;
  /** Called with each pass's actions (empty passes included). */
  readonly onPass?: (actions: BackendAction[]) => void;
  /** Called when a pass fails (e.g. the database restarts); the loop goes on. */
  readonly onError?: (error: unknown) => void;
  readonly signal?: AbortSignal;
}

/** Runs passes until the signal aborts; a failed pass is reported and the next one runs on time. */
export async function watchDatabaseLimits(db: WatchedDatabases, options: WatchOptions = {}): Promise<void> {
  const interval = options.intervalMs ?? 1000;
  while (!options.signal?.aborted) {
    const started = Date.now();
    try {
      options.onPass?.(await enforceDatabaseLimits(db, options));
    } catch (error) {
      options.onError?.(error);
    }
    const wait = Math.max(0, interval - (Date.now() - started));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      options.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
}

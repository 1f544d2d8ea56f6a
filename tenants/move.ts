import { spawn } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { checkAuditText, recordAudit } from './audit.ts';
import { CELL_SCHEMA, type Cell, cellGroupRole } from './cells.ts';
import { TenantNotFoundError } from './errors.ts';
import {
  inClientTransaction,
  inTransaction,
  libpqEnvironment,
  poolConnection,
  withTenantLock,
} from './lifecycle/session.ts';
import { TenantStateError, type TenantStatus } from './lifecycle/status.ts';
import { runSteps, type Step, type StepResult } from './lifecycle/steps.ts';
import type { ProvisionerDeps } from './provisioner.ts';
import { resumeTenant, suspendTenant } from './suspension.ts';
import { roleSettings } from './tenant-database.ts';
import { parseTenantId } from './tenant-id.ts';
import { getTier } from './tiers.ts';

export const DEFAULT_MOVE_DIR = path.join('out', 'moves');

/** Move steps, in the order they run. */
export const MOVE_STEPS = ['suspend', 'dump', 'restore', 'verify', 'switch', 'drop', 'resume'] as const;
export type MoveStep = (typeof MOVE_STEPS)[number];

/** A move was refused or stopped; one line naming the tenant. */
export class MoveError extends Error {
  override readonly name = 'MoveError';
}

const optionsSchema = z.object({
  to: z.string().min(1, 'a target cell is required'),
  actor: z.string().min(1, 'actor must not be empty'),
  reason: z.string().trim().min(1).default('moved to another cell'),
  dryRun: z.boolean().default(false),
  workDir: z.string().min(1).default(DEFAULT_MOVE_DIR),
});

export interface MoveOptions {
  /** The cell to move to, as the env config names it. */
  readonly to: string;
  /** Who acts, kept in the audit trail. */
  readonly actor: string;
  /** @default 'moved to another cell' */
  readonly reason?: string;
  /** Print every step's plan and change nothing. @default false */
  readonly dryRun?: boolean;
  /** Where the schema's dump is written while the move runs. @default 'out/moves' */
  readonly workDir?: string;
}

export interface MoveResult {
  readonly tenantId: string;
  readonly from: string;
  readonly to: string;
  readonly dryRun: boolean;
  /** Per table: rows and checksum, the same on both sides (empty on a dry run). */
  readonly tables: Record<string, { readonly rows: number; readonly checksum: string }>;
  readonly steps: StepResult<MoveStep>[];
}

interface MoveRow {
  from_cell: string;
  to_cell: string;
  previous_status: TenantStatus;
  dump_path: string | null;
  to_role_oid: string | null;
}

interface Ctx {
  readonly deps: ProvisionerDeps;
  /** The catalog: the locked session on a real run, the pool on a dry run. */
  readonly db: pg.Pool | pg.PoolClient;
  readonly id: string;
  readonly tier: string;
  readonly from: Cell;
  readonly to: Cell;
  readonly options: z.output<typeof optionsSchema>;
  /** The status when the move began, given back at the end. */
  readonly previous: TenantStatus;
  status: TenantStatus;
  dump: string | null;
  /** The role this move created on the target's server, if it did. */
  createdRoleOid: number | null;
  tables: MoveResult['tables'];
}

const MOVABLE: readonly TenantStatus[] = ['active', 'suspended'];

/**
 * The tenant role's oid on a cell's server. Roles are global to a server, so the same oid on both cells means
 * one server and one role; a different oid means two servers (or a role that is not this tenant's).
 */
async function roleOid(cell: Cell, id: string): Promise<number | null> {
  const { rows } = await cell.pool.query<{ oid: string }>(
    'SELECT oid::int8 AS oid FROM pg_roles WHERE rolname = $1',
    [id],
  );
  return rows[0] ? Number(rows[0].oid) : null;
}

async function sameRole(ctx: Ctx): Promise<boolean> {
  const [from, to] = await Promise.all([roleOid(ctx.from, ctx.id), roleOid(ctx.to, ctx.id)]);
  return from !== null && from === to;
}

async function schemaExists(cell: Cell, id: string): Promise<boolean> {
  const { rowCount } = await cell.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [id]);
  return rowCount === 1;
}

/** Runs a libpq tool; its first stderr line on failure. */
async function tool(command: string, args: string[], cell: Cell, what: string): Promise<void> {
  const child = spawn(command, args, {
    env: libpqEnvironment(poolConnection(cell.pool)),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0)
    throw new MoveError(`${what} failed (${command} exit ${code}): ${stderr.trim().split('\n')[0]}`);
}

/** Tables of the schema with their row count and a checksum of their rows (order-independent). */
export async function tableChecksums(cell: Cell, id: string): Promise<MoveResult['tables']> {
  const { rows } = await cell.pool.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    [id],
  );
  const tables: Record<string, { rows: number; checksum: string }> = {};
  for (const { relname } of rows) {
    const q = `${pg.escapeIdentifier(id)}.${pg.escapeIdentifier(relname)}`;
    const { rows: sum } = await cell.pool.query<{ n: number; checksum: string }>(
      `SELECT count(*)::int AS n, coalesce(md5(string_agg(h, '' ORDER BY h)), md5('')) AS checksum
         FROM (SELECT md5(t::text) AS h FROM ${q} t) rows`,
    );
    tables[relname] = { rows: sum[0]!.n, checksum: sum[0]!.checksum };
  }
  return tables;
}

const session = (ctx: Ctx) => ctx.db as pg.PoolClient;
const suspensionDeps = (ctx: Ctx) => ({ ...ctx.deps, session: session(ctx) });

const suspendStep: Step<Ctx, MoveStep> = {
  name: 'suspend',
  async plan(ctx) {
    return ctx.status === 'suspended'
      ? []
      : [`status ${ctx.status} -> suspended: logins blocked, sessions ended`];
  },
  async apply(ctx, planned) {
    await suspendTenant(suspensionDeps(ctx), ctx.id, {
      actor: ctx.options.actor,
      reason: `moving to cell ${ctx.to.id}`,
    });
    ctx.status = 'suspended';
    return planned;
  },
};

const dumpStep: Step<Ctx, MoveStep> = {
  name: 'dump',
  async plan(ctx) {
    if (await schemaExists(ctx.to, ctx.id)) return [];
    if (ctx.dump && (await stat(ctx.dump).catch(() => null))) return [];
    return [`pg_dump of schema ${ctx.id} from cell ${ctx.from.id} to ${ctx.options.workDir}`];
  },
  async apply(ctx, planned) {
    await mkdir(ctx.options.workDir, { recursive: true });
    const file = path.join(ctx.options.workDir, `${ctx.id}-${ctx.from.id}-to-${ctx.to.id}.dump`);
    const partial = `${file}.partial`;
    try {
      // pg_dump takes --schema as a pattern: quoting makes the hyphenated id literal.
      await tool(
        'pg_dump',
        ['-Fc', `--schema=${pg.escapeIdentifier(ctx.id)}`, '-f', partial],
        ctx.from,
        `dump of '${ctx.id}'`,
      );
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    await session(ctx).query('UPDATE control.tenant_moves SET dump_path = $2 WHERE tenant_id = $1', [
      ctx.id,
      file,
    ]);
    ctx.dump = file;
    return planned;
  },
};

/**
 * The role on the target's server (made NOLOGIN, CONNECTION LIMIT 0 with the tier's settings where the server
 * has none; resume gives it back its login), the target cell's group, then the dump in one transaction.
 */
const restoreStep: Step<Ctx, MoveStep> = {
  name: 'restore',
  async plan(ctx) {
    if (await schemaExists(ctx.to, ctx.id)) return [];
    return [
      (await roleOid(ctx.to, ctx.id)) === null
        ? `role ${ctx.id} on cell ${ctx.to.id}'s server: NOLOGIN, CONNECTION LIMIT 0, ${ctx.tier} settings`
        : `role ${ctx.id} joins ${cellGroupRole(ctx.to.connection.database)}`,
      `pg_restore into cell ${ctx.to.id}, one transaction`,
    ];
  },
  async apply(ctx, planned) {
    if (!ctx.dump) throw new MoveError(`tenant '${ctx.id}': no dump to restore from`);
    const role = pg.escapeIdentifier(ctx.id);
    const group = pg.escapeIdentifier(cellGroupRole(ctx.to.connection.database));
    const existing = await roleOid(ctx.to, ctx.id);
    if (existing !== null && existing !== ctx.createdRoleOid && !(await sameRole(ctx)))
      throw new MoveError(
        `a role named '${ctx.id}' exists on cell ${ctx.to.id}'s server and is not this tenant's; nothing restored`,
      );
    if (existing === null) {
      const settings = Object.entries(roleSettings(getTier(ctx.tier))).map(
        ([name, value]) => `ALTER ROLE ${role} SET ${name} = ${value}`,
      );
      await ctx.to.pool.query(
        [
          'BEGIN',
          `CREATE ROLE ${role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT 0 IN ROLE ${group}`,
          ...settings,
          'COMMIT',
        ].join(';\n'),
      );
      ctx.createdRoleOid = await roleOid(ctx.to, ctx.id);
      await session(ctx).query('UPDATE control.tenant_moves SET to_role_oid = $2 WHERE tenant_id = $1', [
        ctx.id,
        ctx.createdRoleOid,
      ]);
    } else {
      await ctx.to.pool.query(`GRANT ${group} TO ${role}`);
    }
    await tool(
      'pg_restore',
      ['--single-transaction', '--exit-on-error', '-d', ctx.to.connection.database, ctx.dump],
      ctx.to,
      `restore of '${ctx.id}' into cell ${ctx.to.id}`,
    );
    const { rows } = await ctx.from.pool.query<{ version: number }>(
      `SELECT version FROM ${CELL_SCHEMA}.tenant_schemas WHERE tenant_id = $1`,
      [ctx.id],
    );
    const known = await ctx.db.query<{ v: number }>(
      'SELECT schema_version AS v FROM control.tenants WHERE id = $1',
      [ctx.id],
    );
    await ctx.to.pool.query(
      `INSERT INTO ${CELL_SCHEMA}.tenant_schemas (tenant_id, version) VALUES ($1, $2)
       ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, updated_at = now()`,
      [ctx.id, rows[0]?.version ?? known.rows[0]!.v],
    );
    return planned;
  },
};

/** Both copies hold the same tables, row counts and per-table checksums; otherwise nothing is switched. */
const verifyStep: Step<Ctx, MoveStep> = {
  name: 'verify',
  check: true,
  async plan(ctx, so) {
    if (so.dryRun) return ['compare the table list, row counts and a checksum per table in both cells'];
    // After the switch the old copy may be gone: it was verified before the catalog moved.
    return (await schemaExists(ctx.from, ctx.id)) && (await currentCell(ctx)) === ctx.from.id ? [] : null;
  },
  async apply(ctx) {
    const [source, target] = await Promise.all([
      tableChecksums(ctx.from, ctx.id),
      tableChecksums(ctx.to, ctx.id),
    ]);
    const names = (t: MoveResult['tables']) => Object.keys(t).join(', ');
    if (names(source) !== names(target))
      throw new MoveError(
        `tenant '${ctx.id}': cell ${ctx.to.id} holds tables [${names(target)}], cell ${ctx.from.id} [${names(source)}]; nothing switched`,
      );
    for (const [table, s] of Object.entries(source)) {
      const t = target[table]!;
      if (s.rows !== t.rows || s.checksum !== t.checksum)
        throw new MoveError(
          `tenant '${ctx.id}': table ${table} has ${t.rows} rows (checksum ${t.checksum}) in cell ${ctx.to.id}, ${s.rows} (${s.checksum}) in cell ${ctx.from.id}; nothing switched`,
        );
    }
    ctx.tables = target;
    return Object.entries(target).map(([table, t]) => `${table}: ${t.rows} rows, checksum ${t.checksum}`);
  },
};

async function currentCell(ctx: Ctx): Promise<string> {
  const { rows } = await ctx.db.query<{ cell_id: string }>(
    'SELECT cell_id FROM control.tenants WHERE id = $1',
    [ctx.id],
  );
  return rows[0]!.cell_id;
}

const switchStep: Step<Ctx, MoveStep> = {
  name: 'switch',
  async plan(ctx) {
    return (await currentCell(ctx)) === ctx.to.id ? [] : [`catalog: cell ${ctx.from.id} -> ${ctx.to.id}`];
  },
  async apply(ctx, planned) {
    const client = session(ctx);
    const { rows } = await ctx.to.pool.query<{ oid: string }>(
      'SELECT oid::int8 AS oid FROM pg_roles WHERE rolname = $1',
      [ctx.id],
    );
    await inClientTransaction(client, async () => {
      await client.query('UPDATE control.tenants SET cell_id = $2, updated_at = now() WHERE id = $1', [
        ctx.id,
        ctx.to.id,
      ]);
      await client.query('UPDATE control.tenant_roles SET role_oid = $2 WHERE tenant_id = $1', [
        ctx.id,
        rows[0]!.oid,
      ]);
      await recordAudit(client, {
        tenantId: ctx.id,
        actor: ctx.options.actor,
        action: 'tenant.moved',
        reason: ctx.options.reason,
        evidence: { from: ctx.from.id, to: ctx.to.id, tables: ctx.tables },
      });
    });
    return planned;
  },
};

/** The old copy goes only once the catalog names the new cell: its schema, and its role if on another server. */
const dropStep: Step<Ctx, MoveStep> = {
  name: 'drop',
  async plan(ctx) {
    const changes: string[] = [];
    if (await schemaExists(ctx.from, ctx.id)) changes.push(`drop schema ${ctx.id} in cell ${ctx.from.id}`);
    const { rowCount } = await ctx.from.pool.query(
      `SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
        WHERE r.rolname = $1 AND g.rolname = $2`,
      [ctx.id, cellGroupRole(ctx.from.connection.database)],
    );
    if (rowCount) {
      changes.push(
        (await sameRole(ctx))
          ? `role ${ctx.id} leaves ${cellGroupRole(ctx.from.connection.database)}`
          : `drop role ${ctx.id} on cell ${ctx.from.id}'s server`,
      );
    }
    return changes;
  },
  async apply(ctx, planned) {
    if ((await currentCell(ctx)) !== ctx.to.id)
      throw new MoveError(`tenant '${ctx.id}' is not switched to cell ${ctx.to.id}; the old copy stays`);
    const role = pg.escapeIdentifier(ctx.id);
    const shared = await sameRole(ctx);
    await inTransaction(ctx.from.pool, async (c) => {
      await c.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`);
      await c.query(`DELETE FROM ${CELL_SCHEMA}.tenant_schemas WHERE tenant_id = $1`, [ctx.id]);
      if (shared) {
        await c.query(
          `REVOKE ${pg.escapeIdentifier(cellGroupRole(ctx.from.connection.database))} FROM ${role}`,
        );
      } else if ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [ctx.id])).rowCount) {
        await c.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`);
        await c.query(`DROP OWNED BY ${role}`);
        await c.query(`DROP ROLE ${role}`);
      }
    });
    if (ctx.dump) await rm(ctx.dump, { force: true });
    return planned;
  },
};

const resumeStep: Step<Ctx, MoveStep> = {
  name: 'resume',
  async plan(ctx) {
    return ctx.previous === 'suspended'
      ? ['tenant stays suspended, as before the move']
      : ['status suspended -> active: logins back on the new cell'];
  },
  async apply(ctx, planned) {
    if (ctx.previous !== 'suspended') {
      await resumeTenant(suspensionDeps(ctx), ctx.id, {
        actor: ctx.options.actor,
        reason: `moved to cell ${ctx.to.id}`,
      });
    }
    await session(ctx).query('DELETE FROM control.tenant_moves WHERE tenant_id = $1', [ctx.id]);
    return planned;
  },
};

const STEPS = [suspendStep, dumpStep, restoreStep, verifyStep, switchStep, dropStep, resumeStep];

/**
 * Moves a tenant to another cell without losing a row: suspend, dump, restore into the new cell, verify
 * (table list, row counts, a checksum per table), switch the catalog, drop the old copy, resume. Serialized
 * per tenant; the move in progress is recorded (control.tenant_moves), so a rerun after a crash at any step
 * picks it up where it stopped. Bad input (unknown tenant or cell, wrong state) is refused before anything
 * changes. A dry run runs every step's plan only.
 */
export async function moveTenant(
  deps: ProvisionerDeps,
  tenantId: string,
  options: MoveOptions,
): Promise<MoveResult> {
  const parsed = optionsSchema.parse(options);
  const id = parseTenantId(tenantId);
  checkAuditText('actor', parsed.actor);
  checkAuditText('reason', parsed.reason);
  const to = deps.cells.cell(parsed.to);
  const move = async (db: pg.Pool | pg.PoolClient): Promise<MoveResult> => {
    const { rows } = await db.query<{ status: TenantStatus; tier: string; cell_id: string }>(
      'SELECT status::text AS status, tier, cell_id FROM control.tenants WHERE id = $1',
      [id],
    );
    const tenant = rows[0];
    if (!tenant) throw new TenantNotFoundError(id);
    const { rows: moves } = await db.query<MoveRow>(
      `SELECT from_cell, to_cell, previous_status::text AS previous_status, dump_path, to_role_oid::text
         FROM control.tenant_moves WHERE tenant_id = $1`,
      [id],
    );
    let underway = moves[0];
    if (underway && underway.to_cell !== to.id)
      throw new MoveError(
        `tenant '${id}' is being moved to cell ${underway.to_cell}; finish that move first (npm run tenant -- move ${id} --to ${underway.to_cell})`,
      );
    if (!underway) {
      if (tenant.cell_id === to.id)
        throw new MoveError(`tenant '${id}' is already in cell ${to.id}; nothing changed`);
      if (!MOVABLE.includes(tenant.status))
        throw new TenantStateError(
          `tenant '${id}' is ${tenant.status}; a move takes an active or suspended tenant; nothing changed`,
        );
      const from = deps.cells.cell(tenant.cell_id);
      if (await schemaExists(to, id))
        throw new MoveError(
          `cell ${to.id} already has a schema named '${id}'; inspect it first; nothing changed`,
        );
      underway = {
        from_cell: from.id,
        to_cell: to.id,
        previous_status: tenant.status,
        dump_path: null,
        to_role_oid: null,
      };
      if (!parsed.dryRun) {
        await db.query(
          'INSERT INTO control.tenant_moves (tenant_id, from_cell, to_cell, previous_status) VALUES ($1, $2, $3, $4)',
          [id, from.id, to.id, tenant.status],
        );
      }
    }
    const ctx: Ctx = {
      deps,
      db,
      id,
      tier: tenant.tier,
      from: deps.cells.cell(underway.from_cell),
      to,
      options: parsed,
      previous: underway.previous_status,
      status: tenant.status,
      dump: underway.dump_path,
      createdRoleOid: underway.to_role_oid === null ? null : Number(underway.to_role_oid),
      tables: {},
    };
    const steps = await runSteps(STEPS, ctx, {
      dryRun: parsed.dryRun,
      ...(deps.observer ? { observer: deps.observer } : {}),
    });
    return { tenantId: id, from: ctx.from.id, to: to.id, dryRun: parsed.dryRun, tables: ctx.tables, steps };
  };
  return parsed.dryRun ? move(deps.pool) : withTenantLock(deps.pool, id, (client) => move(client));
}

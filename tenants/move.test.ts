import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MOVE_STEPS, MoveError, moveTenant, tableChecksums } from './move.ts';
import { createTenant } from './provisioner.ts';
import { createProvisioningFixture, type ProvisioningFixture } from './provisioning-fixture.ts';
import { crashAfter, SimulatedCrash } from './testing/crash.ts';

let fx: ProvisioningFixture;
let workDir: string;
const who = { actor: 'cli:test' };
const sessions: pg.Client[] = [];

beforeAll(async () => {
  fx = await createProvisioningFixture('move', 6, { cells: 2 });
  workDir = await mkdtemp(path.join(tmpdir(), 'moves-'));
}, 30_000);

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => {})));
  await fx?.close();
  await rm(workDir, { recursive: true, force: true });
});

const cell = (id: string) => fx.cells.cell(id);

/** Logged in as the tenant role on a cell (trust auth), as its workloads are. */
function asTenant(id: string, cellId: string): pg.Client {
  const { host, port, database } = cell(cellId).connection;
  const client = new pg.Client({ host, port, database, user: id });
  client.on('error', () => {});
  sessions.push(client);
  return client;
}

/** A tenant in cell-1 with rows its role wrote itself. */
async function tenantWithRows(stem: string, agents = 25): Promise<string> {
  const id = fx.tenantId(stem);
  const created = await createTenant(fx.deps, { id, tier: 'pro', actor: 'test' });
  expect(created.tenant?.cellId).toBe('cell-1');
  const client = asTenant(id, 'cell-1');
  await client.connect();
  const s = pg.escapeIdentifier(id);
  await client.query(
    `INSERT INTO ${s}.agents (name, model, config) SELECT 'agent-' || i, 'm', jsonb_build_object('i', i) FROM generate_series(1, ${agents}) i`,
  );
  await client.query(`INSERT INTO ${s}.tasks (agent_id) SELECT id FROM ${s}.agents`);
  await client.end();
  return id;
}

async function catalogRow(id: string) {
  const { rows } = await fx.pool.query(
    `SELECT t.status::text AS status, t.cell_id, (SELECT count(*)::int FROM control.tenant_moves m WHERE m.tenant_id = t.id) AS moves
       FROM control.tenants t WHERE t.id = $1`,
    [id],
  );
  return rows[0];
}

async function schemaIn(cellId: string, id: string): Promise<boolean> {
  const { rowCount } = await cell(cellId).pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [id]);
  return rowCount === 1;
}

describe('tenant move', () => {
  test('moves every row to the new cell, verified, and the tenant works there and only there', async () => {
    const id = await tenantWithRows('mv-ok');
    const before = await tableChecksums(cell('cell-1'), id);
    const result = await moveTenant(fx.deps, id, { to: 'cell-2', ...who, workDir });
    expect(result.steps.map((s) => [s.step, s.action])).toEqual(MOVE_STEPS.map((s) => [s, 'applied']));
    expect(result.tables).toEqual(before);
    expect(before.agents?.rows).toBe(25);
    expect(await tableChecksums(cell('cell-2'), id)).toEqual(before);
    expect(await catalogRow(id)).toEqual({ status: 'active', cell_id: 'cell-2', moves: 0 });
    expect(await schemaIn('cell-1', id)).toBe(false);
    const { rows: counts } = await fx.pool.query('SELECT id, tenant_count FROM control.cells ORDER BY id');
    expect(counts.find((c) => c.id === 'cell-2')?.tenant_count).toBeGreaterThanOrEqual(1);

    const there = asTenant(id, 'cell-2');
    await there.connect();
    const s = pg.escapeIdentifier(id);
    expect((await there.query(`SELECT count(*)::int AS n FROM ${s}.agents`)).rows[0].n).toBe(25);
    // Identity sequences came along: a new row does not collide.
    await there.query(`INSERT INTO ${s}.agents (name, model) VALUES ('after-move', 'm')`);
    await expect(asTenant(id, 'cell-1').connect()).rejects.toMatchObject({ code: '42501' });
    // The tenant is known as ours in the new cell: a reconcile there changes nothing.
    const rerun = await createTenant(fx.deps, { id, tier: 'pro', actor: 'test' });
    expect(rerun.steps.find((x) => x.step === 'database')?.action).toBe('unchanged');
  });

  test('a dry run plans every step and changes nothing', async () => {
    const id = await tenantWithRows('mv-dry', 3);
    const plan = await moveTenant(fx.deps, id, { to: 'cell-2', ...who, workDir, dryRun: true });
    expect(plan.steps.map((s) => [s.step, s.action])).toEqual(MOVE_STEPS.map((s) => [s, 'planned']));
    expect(await catalogRow(id)).toEqual({ status: 'active', cell_id: 'cell-1', moves: 0 });
    expect(await schemaIn('cell-2', id)).toBe(false);
  });

  test.each(MOVE_STEPS.map((s) => [s]))(
    'a crash after %s: the rerun finishes the move with every row',
    async (step) => {
      const id = await tenantWithRows(`mv-x${MOVE_STEPS.indexOf(step)}`, 5);
      const before = await tableChecksums(cell('cell-1'), id);
      await expect(
        moveTenant({ ...fx.deps, observer: crashAfter(step) }, id, { to: 'cell-2', ...who, workDir }),
      ).rejects.toThrow(SimulatedCrash);
      const rerun = moveTenant(fx.deps, id, { to: 'cell-2', ...who, workDir });
      // After the last step the move is done; a rerun then finds the tenant already there.
      if (step === MOVE_STEPS.at(-1))
        await expect(rerun).rejects.toThrow(`tenant '${id}' is already in cell cell-2`);
      else await rerun;
      expect(await catalogRow(id)).toEqual({ status: 'active', cell_id: 'cell-2', moves: 0 });
      expect(await tableChecksums(cell('cell-2'), id)).toEqual(before);
      expect(await schemaIn('cell-1', id)).toBe(false);
    },
  );

  test('a suspended tenant moves and stays suspended', async () => {
    const id = await tenantWithRows('mv-susp', 2);
    await fx.pool.query("UPDATE control.tenants SET status = 'suspended' WHERE id = $1", [id]);
    await moveTenant(fx.deps, id, { to: 'cell-2', ...who, workDir });
    expect(await catalogRow(id)).toEqual({ status: 'suspended', cell_id: 'cell-2', moves: 0 });
  });
});

describe('bad input: one line, nothing changes', () => {
  test('an unknown tenant', async () => {
    await expect(moveTenant(fx.deps, 'nobody-here', { to: 'cell-2', ...who, workDir })).rejects.toThrow(
      "tenant 'nobody-here' does not exist",
    );
  });

  test('an unknown cell', async () => {
    const id = await tenantWithRows('mv-cell', 1);
    await expect(moveTenant(fx.deps, id, { to: 'cell-9', ...who, workDir })).rejects.toThrow(
      "unknown cell 'cell-9': the env config lists cell-1, cell-2",
    );
    expect(await catalogRow(id)).toEqual({ status: 'active', cell_id: 'cell-1', moves: 0 });
  });

  test.each([['provisioning'], ['offboarding'], ['archived']])('a tenant that is %s', async (status) => {
    const id = await tenantWithRows(`mv-${status.slice(0, 4)}`, 1);
    await fx.pool.query('UPDATE control.tenants SET status = $2 WHERE id = $1', [id, status]);
    await expect(moveTenant(fx.deps, id, { to: 'cell-2', ...who, workDir })).rejects.toThrow(
      `tenant '${id}' is ${status}; a move takes an active or suspended tenant; nothing changed`,
    );
    expect(await catalogRow(id)).toEqual({ status, cell_id: 'cell-1', moves: 0 });
    expect(await schemaIn('cell-2', id)).toBe(false);
  });

  test('a tenant already in the target cell, and a move to another cell while one is under way', async () => {
    const id = await tenantWithRows('mv-twice', 1);
    await expect(moveTenant(fx.deps, id, { to: 'cell-1', ...who, workDir })).rejects.toThrow(MoveError);
    await expect(
      moveTenant({ ...fx.deps, observer: crashAfter('dump') }, id, { to: 'cell-2', ...who, workDir }),
    ).rejects.toThrow(SimulatedCrash);
    await expect(moveTenant(fx.deps, id, { to: 'cell-1', ...who, workDir })).rejects.toThrow(
      `tenant '${id}' is being moved to cell cell-2; finish that move first`,
    );
    await moveTenant(fx.deps, id, { to: 'cell-2', ...who, workDir });
    expect(await catalogRow(id)).toEqual({ status: 'active', cell_id: 'cell-2', moves: 0 });
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { AuditTextError, auditInsertStatement, auditTrail, recordAudit } from './audit.ts';
import type { CellDirectory } from './cells.ts';
import { expectedFailure } from './format.ts';
import { changeTier, createTenant } from './provisioner.ts';
import { resumeTenant, suspendTenant } from './suspension.ts';
import { createCatalogDatabase, dropRoles, type TestDatabase, uniqueTenantId } from './testing/pg.ts';

const env = loadEnvironmentConfig('dev');
let db: TestDatabase;
let pool: pg.Pool;
let cells: CellDirectory;
let manifestsDir: string;
const roles: string[] = [];

/** Values an operator could type into --reason or an HTTP body. */
const HOSTILE = [
  "it's fine",
  "x'); DROP TABLE control.tenants; --",
  "'; DROP TABLE control.audit_events; SELECT '",
  "back\\slash \\' \\\\",
  "E'\\x27'",
  '$$; DROP TABLE control.tenants; $$',
  'ünïcødé 🚀 \u2028 \u200b 中文',
];
const NUL = 'before\u0000after';

async function tenant(stem: string, actor = 'test'): Promise<string> {
  const id = uniqueTenantId(stem);
  roles.push(id);
  await createTenant(
    { pool, cells, env, aws: { enabled: false }, manifestsDir },
    { id, tier: 'starter', actor },
  );
  return id;
}

async function count(table: string, id: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [id]);
  return rows[0].n;
}

beforeAll(async () => {
  ({ db, pool, cells } = await createCatalogDatabase('audit', 4));
  manifestsDir = await mkdtemp(path.join(tmpdir(), 'audit-'));
});

afterAll(async () => {
  await pool.end();
  await db.drop();
  await dropRoles(roles);
  await rm(manifestsDir, { recursive: true, force: true });
});

describe('audit values from users', () => {
  test('auditInsertStatement keeps hostile reasons and actors verbatim inside a multi-statement batch', async () => {
    const id = uniqueTenantId('aud-batch');
    const batch = ['BEGIN'];
    for (const text of HOSTILE) {
      batch.push(
        auditInsertStatement({
          tenantId: id,
          actor: text,
          action: 'test.hostile',
          reason: text,
          evidence: { note: text, [text]: 1 },
        }),
      );
    }
    batch.push('COMMIT');
    await pool.query(batch.join(';\n'));
    const trail = await auditTrail(pool, id);
    expect(trail.map((e) => [e.actor, e.reason, e.evidence?.note, e.evidence?.[e.actor]])).toEqual(
      HOSTILE.map((t) => [t, t, t, 1]),
    );
    const { rows } = await pool.query("SELECT to_regclass('control.tenants') AS t");
    expect(rows[0].t).not.toBeNull();
  });

  test('a NUL byte is refused with a clear error before anything is written', async () => {
    const id = uniqueTenantId('aud-nul');
    const entry = { tenantId: id, actor: 'sre', action: 'test.nul' };
    expect(() => auditInsertStatement({ ...entry, reason: NUL })).toThrow(AuditTextError);
    expect(() => auditInsertStatement({ ...entry, evidence: { nested: [{ v: NUL }] } })).toThrow(
      /evidence\.v "before\\u0000after" contains a NUL character/,
    );
    await expect(recordAudit(pool, { ...entry, actor: NUL })).rejects.toThrow(
      'actor "before\\u0000after" contains a NUL character, which PostgreSQL text cannot store',
    );
    expect(await count('control.audit_events', id)).toBe(0);
    // The CLIs print it as one line, not a stack trace.
    expect(expectedFailure(new AuditTextError('reason', NUL))).toBe(
      'reason "before\\u0000after" contains a NUL character, which PostgreSQL text cannot store',
    );
  });

  test('createTenant stores a hostile actor verbatim through its batched activation', async () => {
    const actor = HOSTILE[2]!;
    const id = await tenant('aud-create', actor);
    const trail = await auditTrail(pool, id);
    expect(trail.map((e) => e.action)).toEqual(['tenant.requested', 'api-key.issued', 'tenant.activated']);
    expect(new Set(trail.map((e) => e.actor))).toEqual(new Set([actor]));
  });

  test('createTenant and changeTier refuse a NUL in actor or reason and create nothing', async () => {
    const id = uniqueTenantId('aud-crnul');
    const deps = { pool, cells, env, aws: { enabled: false }, manifestsDir };
    await expect(createTenant(deps, { id, tier: 'starter', actor: 'sre', reason: NUL })).rejects.toThrow(
      AuditTextError,
    );
    await expect(createTenant(deps, { id, tier: 'starter', actor: NUL })).rejects.toThrow(AuditTextError);
    const { rows } = await pool.query('SELECT 1 FROM control.tenants WHERE id = $1', [id]);
    expect(rows).toHaveLength(0);
    const existing = await tenant('aud-tier');
    await expect(changeTier(deps, { id: existing, tier: 'pro', actor: 'sre', reason: NUL })).rejects.toThrow(
      AuditTextError,
    );
    const tier = await pool.query('SELECT tier FROM control.tenants WHERE id = $1', [existing]);
    expect(tier.rows[0].tier).toBe('starter');
  });

  test('suspend with a NUL reason changes nothing: status, role and its sessions stay', async () => {
    const id = await tenant('aud-susp');
    const deps = { pool, cells, env, manifestsDir };
    await expect(suspendTenant(deps, id, { actor: 'sre', reason: NUL })).rejects.toThrow(AuditTextError);
    const { rows } = await pool.query(
      `SELECT t.status::text AS status, r.rolcanlogin, r.rolconnlimit
         FROM control.tenants t JOIN pg_roles r ON r.rolname = t.id WHERE t.id = $1`,
      [id],
    );
    expect(rows[0]).toMatchObject({ status: 'active', rolcanlogin: true });
    expect(rows[0].rolconnlimit).toBeGreaterThan(0);
    expect((await auditTrail(pool, id)).map((e) => e.action)).not.toContain('tenant.suspended');

    const reason = HOSTILE[1]!;
    await suspendTenant(deps, id, { actor: HOSTILE[3]!, reason });
    await resumeTenant(deps, id, { actor: 'sre', reason: HOSTILE[6]! });
    const trail = await auditTrail(pool, id);
    expect(trail.filter((e) => e.action !== 'tenant.requested' && e.action.startsWith('tenant.s'))).toEqual([
      expect.objectContaining({ action: 'tenant.suspended', actor: HOSTILE[3], reason }),
    ]);
    expect(trail.at(-1)).toMatchObject({ action: 'tenant.resumed', reason: HOSTILE[6] });
  });
});

import { CreateEmailIdentityCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { costReportSender } from '../../config/names.ts';
import { type MotoServer, startMoto } from '../testing/moto.ts';
import { createCatalogDatabase, type TestDatabase } from '../testing/pg.ts';
import { type GuardInputs, GuardRunError, storeRunInputs } from './inputs.ts';
import { buildCostReport, emailCostReport, renderCostReportHtml, renderCostReportText } from './report.ts';
import { DEFAULT_POLICY } from './rules.ts';

const env = loadEnvironmentConfig('dev');
let db: TestDatabase;
let pool: pg.Pool;
let moto: MotoServer;

const tenant = (id: string, tier: 'pro' | 'starter', agentMinutes: number) => ({
  id,
  tier,
  status: 'active',
  guardState: 'ok' as const,
  statePeriod: '2026-11',
  pendingState: null,
  pendingRuns: 0,
  agentMinutes,
  apiCalls: 1000,
  overrideExpiresAt: null,
  statusActor: null,
});

const inputs: GuardInputs = {
  version: 2,
  now: '2026-11-24T12:00:00.000Z',
  period: '2026-11',
  costs: {
    start: '2026-11-01',
    end: '2026-11-25',
    fetchedAt: '2026-11-24T12:00:00.000Z',
    problem: null,
    estimated: true,
    latestCostDay: '2026-11-24',
    dataTime: '2026-11-24T12:00:00.000Z',
    pages: 2,
    requests: 3,
    byTenant: { 'big-spender': 10.5, 'small-one': 0.6 },
    untaggedUsd: 4.25,
  },
  tenants: [
    tenant('small-one', 'starter', 600),
    tenant('big-spender', 'pro', 10_500),
    tenant('no-bill', 'pro', 100),
  ],
  config: { ...env.costGuard, approveSuspend: false, policy: DEFAULT_POLICY },
};

beforeAll(async () => {
  moto = await startMoto();
  ({ db, pool } = await createCatalogDatabase('cost_report', 2));
});

afterAll(async () => {
  await pool.end();
  await db.drop();
  await moto.stop();
});

describe('cost report', () => {
  test('without a stored run it says what to do', async () => {
    await expect(buildCostReport(pool, env)).rejects.toThrow(GuardRunError);
  });

  test('per tenant, per tier, and the guard own Cost Explorer cost, from the stored run', async () => {
    await storeRunInputs(pool, inputs, 'dry-run');
    const runId = await storeRunInputs(pool, inputs, 'apply');
    const report = await buildCostReport(pool, env);
    expect(report.runId).toBe(runId);
    expect(report.tenants.map((t) => [t.tenantId, t.budgetUsed, t.state])).toEqual([
      // metering includes 1,000 API calls ($0.001) on top of the agent-minutes
      ['big-spender', 1.500143, 'limited'],
      ['small-one', 0.500833, 'ok'],
      ['no-bill', 0.014429, 'ok'],
    ]);
    expect(report.tiers.find((t) => t.tier === 'pro')).toEqual({
      tier: 'pro',
      tenants: 2,
      revenueUsd: 98,
      revenueSource: 'list price',
      costUsd: 10.6,
      margin: (98 - 10.6) / 98,
    });
    expect(report.tiers.find((t) => t.tier === 'free')).toMatchObject({ tenants: 0, margin: null });
    expect(report.guard).toEqual({ runs: 2, ceRequests: 6, ceCostUsd: 0.06 });
    expect(report.untaggedUsd).toBe(4.25);

    const text = renderCostReportText(report);
    expect(text).toMatch(
      /big-spender\s+pro\s+\$10\.50\s+\$10\.50\s+10500\s+1000\s+\$7\.00\s+150\.0%\s+limited/,
    );
    expect(text).toContain('Cost guard: 2 run(s), 6 Cost Explorer request(s), $0.06');

    const html = renderCostReportHtml(report);
    expect(html).toMatch(/<svg [^>]*>.*<rect [^>]*fill="#ef6c00"\/>/s);
    expect(html).not.toMatch(/(src|href)=/);
  });

  test('uses the invoiced revenue Stripe has for a tenant, the list price for the others, and says which', async () => {
    await pool.query(
      `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ('big-spender', 'pro', 'active', 'cell-1')
       ON CONFLICT DO NOTHING`,
    );
    await pool.query(
      "INSERT INTO control.billing_revenue (tenant_id, period, amount_usd, invoices) VALUES ('big-spender', '2026-11', 61.5, 2)",
    );
    try {
      const report = await buildCostReport(pool, env);
      expect(report.tiers.find((t) => t.tier === 'pro')).toMatchObject({
        revenueUsd: 61.5 + 49,
        revenueSource: 'mixed',
      });
      expect(renderCostReportText(report)).toMatch(/pro\s+2\s+\$110\.50\s+mixed\s+\$10\.60/);
    } finally {
      await pool.query('DELETE FROM control.billing_revenue');
    }
  });

  test('the projection per tenant, with its trend chart, in the text and HTML versions', async () => {
    const report = await buildCostReport(pool, env);
    // Run on the 24th at noon: $10.50 over 23.5 days (plus $0.001 of API calls) runs on to $13.41 by the month end.
    const big = report.projections.find((p) => p.tenantId === 'big-spender')!;
    expect(big.points).toHaveLength(24);
    expect(big.points.at(-1)).toEqual({ day: '2026-11-24', spentUsd: 10.5, projectedUsd: 13.41 });
    expect(renderCostReportText(report)).toMatch(/big-spender\s+\$10\.50\s+\$13\.41\s+\$7\.00\s+2026-11-24/);
    const html = renderCostReportHtml(report);
    expect(html.match(/aria-label="projected month-end cost of [a-z-]+ by day/g)).toHaveLength(
      report.tenants.length,
    );
  });

  test('--email sends the HTML and text versions through SES v2', async () => {
    const ses = new SESv2Client({});
    await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: costReportSender(env) }));
    const report = await buildCostReport(pool, env);
    const id = await emailCostReport(ses, env, report);
    const data = (await (await fetch(`${moto.endpoint}/moto-api/data.json`)).json()) as {
      ses: {
        Message: { id: string; destinations: { ToAddresses: string[] }; subject: string; body: string }[];
      };
    };
    const sent = data.ses.Message.find((m) => m.id === id);
    expect(sent?.destinations.ToAddresses).toEqual([env.alertEmail]);
    expect(sent?.subject).toBe('Cost report dev 2026-11');
    expect(sent?.body).toContain('<svg');
  });
});

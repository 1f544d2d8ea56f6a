import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { alarmTopicArn, alarmTopicName } from '../config/environments.ts';
import { type MotoServer, startMoto } from '../tenants/testing/moto.ts';
import { exportUsage } from './export.ts';
import { formatReconcile } from './format.ts';
import { monthRange, reconcileMonth } from './reconcile.ts';
import {
  type BillingFixture,
  insertHours,
  insertTenants,
  linkCustomer,
  startBilling,
  TEST_RETRY,
} from './testing/fixture.ts';
import { CatalogUsageSource } from './usage-source.ts';

const NOW = new Date('2026-12-02T00:30:00Z');
const NOV = new Date('2026-11-01T00:00:00Z');
const A = 'bill-rec-a';
const B = 'bill-rec-b';
const C = 'bill-rec-c';

let f: BillingFixture;
let moto: MotoServer;
let sns: SNSClient;
let customers: Record<string, string>;

async function published(): Promise<{ subject: string; message: Record<string, unknown> }[]> {
  const data = (await (await fetch(`${moto.endpoint}/moto-api/data.json`)).json()) as {
    sns: { Topic: { arn: string; sent_notifications: [string, string, string][] }[] };
  };
  const topic = data.sns.Topic.find((t) => t.arn === alarmTopicArn(f.env));
  return (topic?.sent_notifications ?? []).map(([, message, subject]) => ({
    subject,
    message: JSON.parse(message),
  }));
}

const reconcile = (tolerance = 0) =>
  reconcileMonth(
    {
      pool: f.pool,
      stripe: f.stripe,
      env: f.env,
      usage: new CatalogUsageSource(f.pool),
      sns,
      retry: TEST_RETRY,
      now: () => NOW,
    },
    '2026-11',
    { tolerance },
  );

beforeAll(async () => {
  [f, moto] = await Promise.all([
    startBilling('billing_reconcile', { now: () => NOW.getTime() }),
    startMoto(),
  ]);
  sns = new SNSClient({ region: 'us-east-1' });
});
afterAll(async () => {
  await Promise.all([f?.close(), moto?.stop()]);
});

beforeEach(async () => {
  await moto.reset();
  await sns.send(new CreateTopicCommand({ Name: alarmTopicName(f.env) }));
  await f.pool.query(
    'TRUNCATE control.billing_buckets, control.billing_export_runs, control.billing_reconcile_runs, control.billing_revenue, control.usage_hourly, control.billing_customers, control.tenants CASCADE',
  );
  f.server.resetEvents();
  await insertTenants(f.pool, [A, B]);
  customers = { [A]: await linkCustomer(f, A), [B]: await linkCustomer(f, B) };
  await insertHours(f.pool, A, NOV, 720);
  await insertHours(f.pool, B, NOV, 720, () => ({ agentMinutes: 0.125, apiCalls: 3 }));
  await exportUsage(
    {
      pool: f.pool,
      stripe: f.stripe,
      env: f.env,
      usage: new CatalogUsageSource(f.pool),
      retry: TEST_RETRY,
      now: () => NOW,
    },
    { since: NOV },
  );
});

describe('billing reconcile', () => {
  it('finds no difference after an export, and notifies nobody', async () => {
    const result = await reconcile();
    expect(result).toMatchObject({ compared: 4, differences: [], overTolerance: 0, notified: false });
    expect(formatReconcile(result)).toBe(
      'billing reconcile 2026-11 (2026-11-01T00:00:00.000Z .. 2026-12-01T00:00:00.000Z, tolerance 0): 4 tenant-meter total(s) compared, 0 difference(s), 0 past tolerance',
    );
    expect(await published()).toEqual([]);
    const { rows } = await f.pool.query(
      'SELECT month, over_tolerance, notified FROM control.billing_reconcile_runs',
    );
    expect(rows).toEqual([{ month: '2026-11', over_tolerance: 0, notified: false }]);
  });

  it('lists every difference, counts those past the tolerance and publishes them to the alarm topic', async () => {
    // Usage that grew after the export, and a tenant with usage but no Stripe customer.
    await f.pool.query(
      "UPDATE control.usage_hourly SET api_calls = api_calls + 10000 WHERE tenant_id = $1 AND hour = '2026-11-05T00:00Z'",
      [A],
    );
    await f.pool.query(
      "UPDATE control.usage_hourly SET agent_minutes = 0.126 WHERE tenant_id = $1 AND hour = '2026-11-05T00:00Z'",
      [B],
    );
    await insertTenants(f.pool, [C]);
    await insertHours(f.pool, C, NOV, 2, () => ({ agentMinutes: 4, apiCalls: 0 }));
    const result = await reconcile(0.01);
    expect(result.differences).toEqual([
      expect.objectContaining({ tenantId: A, meter: 'api_calls', difference: '-10000', overTolerance: true }),
      expect.objectContaining({
        tenantId: B,
        meter: 'agent_minutes',
        ours: '90.001',
        stripe: '90',
        difference: '-0.001',
        overTolerance: false,
      }),
      { tenantId: C, meter: 'agent_minutes', ours: '8', stripe: null, difference: '-8', overTolerance: true },
    ]);
    expect(result.overTolerance).toBe(2);
    expect(result.notified).toBe(true);
    const messages = await published();
    expect(messages).toHaveLength(1);
    expect(messages[0]!.subject).toBe('[billing] dev reconcile 2026-11: 2 difference(s) past tolerance');
    expect(messages[0]!.message).toMatchObject({
      source: 'billing-reconcile',
      month: '2026-11',
      tolerance: 0.01,
    });
    expect((messages[0]!.message.differences as unknown[]).length).toBe(2);
  });

  it('lists a tenant whose summary Stripe refuses, compares the others, and counts it past the tolerance', async () => {
    f.server.inject({
      match: /event_summaries/,
      customer: customers[B]!,
      fault: {
        status: 404,
        type: 'invalid_request_error',
        code: 'resource_missing',
        message: 'No such customer',
      },
    });
    const result = await reconcile();
    expect(result.problems).toEqual([
      `tenant '${B}' agent_minutes: Stripe 404 StripeInvalidRequestError/resource_missing: No such customer`,
    ]);
    expect(result).toMatchObject({ compared: 4, differences: [], overTolerance: 1, notified: true });
    expect(formatReconcile(result)).toContain(`  stripe: tenant '${B}' agent_minutes: Stripe 404`);
  });

  it('records the invoiced revenue of the month for the cost report', async () => {
    f.server.addInvoice(customers[A]!, Date.parse('2026-11-01T01:00:00Z') / 1000, 4900);
    f.server.addInvoice(customers[A]!, Date.parse('2026-11-20T01:00:00Z') / 1000, 1250);
    f.server.addInvoice(customers[A]!, Date.parse('2026-11-21T01:00:00Z') / 1000, 999, 'void');
    f.server.addInvoice(customers[B]!, Date.parse('2026-10-31T01:00:00Z') / 1000, 4900);
    const result = await reconcile();
    expect(result.revenue).toEqual({ [A]: 61.5 });
    const { rows } = await f.pool.query(
      'SELECT tenant_id, period, amount_usd::float8 AS usd, invoices FROM control.billing_revenue',
    );
    expect(rows).toEqual([{ tenant_id: A, period: '2026-11', usd: 61.5, invoices: 2 }]);
  });

  it('refuses a month that is not yyyy-mm, in one line', () => {
    expect(() => monthRange('2026-13')).toThrow("'--month' (2026-13) must be yyyy-mm");
    expect(monthRange('2026-02')).toEqual({
      from: new Date('2026-02-01T00:00Z'),
      to: new Date('2026-03-01T00:00Z'),
    });
  });
});

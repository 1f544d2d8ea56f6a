import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { runRecorded } from '../../monitors/job-runs.ts';
import { issueApiKey } from '../../tenants/api-keys.ts';
import { recordAudit } from '../../tenants/audit.ts';
import { storeRunInputs } from '../../tenants/cost-guard/inputs.ts';
import { DEFAULT_POLICY } from '../../tenants/cost-guard/rules.ts';
import { bearer, type ControlPlaneFixture, createFixture } from '../testing/fixture.ts';
import { launchChromium, signInToConsole } from './testing/browser.ts';
import {
  freePort,
  startIdentityProvider,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  type TestIdentityProvider,
} from './testing/oidc-provider.ts';

const SCREENSHOTS = path.join('reports', 'screenshots');
const XSS_REASON = '<script>document.title="owned"</script> billing dispute';

let fx: ControlPlaneFixture;
let app: FastifyInstance;
let idp: TestIdentityProvider;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let base: string;
let manifestsDir: string;
let provisioned: string;
let other: { id: string; key: string };

const signIn = (context: BrowserContext, account: string) => signInToConsole(context, base, account);

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  fx = await createFixture('console');
  manifestsDir = await mkdtemp(path.join(os.tmpdir(), 'console-manifests-'));
  const port = await freePort();
  base = `http://localhost:${port}`;
  idp = await startIdentityProvider(`${base}/console/callback`);
  app = await fx.server({
    MANIFESTS_DIR: manifestsDir,
    OIDC_ISSUER_URL: idp.issuer,
    OIDC_CLIENT_ID: TEST_CLIENT_ID,
    OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
    OIDC_ALLOW_HTTP: 'true',
    CONSOLE_PUBLIC_URL: base,
    CONSOLE_POLL_MS: '500',
  });
  await app.listen({ port, host: 'localhost' });
  const admin = bearer(await fx.token('admin'));
  provisioned = fx.provisionedId('cweb');
  const created = await app.inject({
    method: 'POST',
    url: '/v1/tenants',
    headers: admin,
    payload: { id: provisioned, tier: 'starter' },
  });
  expect(created.statusCode).toBe(201);
  await fx.pool.query(
    `INSERT INTO control.usage (tenant_id, day, agent_minutes, api_calls) VALUES ($1, current_date, 120, 3400)`,
    [provisioned],
  );
  await recordAudit(fx.pool, {
    tenantId: provisioned,
    actor: 'cli:test',
    action: 'tenant.note',
    reason: XSS_REASON,
  });
  const seeded = await fx.tenant('pro');
  other = { id: seeded.id, key: seeded.key };
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await idp?.close();
  await fx?.close();
  await rm(manifestsDir, { recursive: true, force: true });
});

describe('operator console in Chromium', () => {
  let page: Page;

  test('an admin signs in through OIDC and sees the tenants, with usage against quota', async () => {
    page = await signIn(browser.context, 'alice-admin');
    expect(await page.getByText('alice-admin@example.test (admin)').count()).toBe(1);
    const row = page.getByRole('row', { name: new RegExp(provisioned) });
    await row.waitFor();
    expect(await row.getByRole('meter').first().getAttribute('value')).toBe('120');
    const cookies = await browser.context.cookies(base);
    const session = cookies.find((c) => c.name === '__Host-console');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(session!.expires).toBeGreaterThan(Date.now() / 1000);
    expect(session!.expires).toBeLessThan(Date.now() / 1000 + 8 * 3600 + 60);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-tenants.png'), fullPage: true });
  });

  test("the tenant detail lists the tenant's running tasks with their leases, and the usage route's figures", async () => {
    const key = await issueApiKey(fx.pool, provisioned);
    const granted = await app.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(key.key),
      payload: { taskId: 'nightly-index-7' },
    });
    expect(granted.json()).toMatchObject({ decision: 'allow' });
    await page.goto(`${base}/console/tenants/${provisioned}`);
    const task = page.locator('#tasks').getByRole('row', { name: /nightly-index-7/ });
    await expect.poll(() => task.textContent()).toMatch(/ago/);
    expect(await page.locator('#tasks caption').textContent()).toMatch(/^Tasks running: 1 of \d+ allowed/);
    const usage = (
      await app.inject({
        method: 'GET',
        url: `/v1/tenants/${provisioned}/usage`,
        headers: bearer(await fx.token('viewer')),
      })
    ).json();
    const projected = `$${usage.usage.cost.projectedMonthEndUsd.toFixed(2)}`;
    expect(await page.getByRole('row', { name: /Projected month end/ }).textContent()).toContain(projected);
  });

  test('an admin issues a key (shown once) and revokes it through the operator routes', async () => {
    await page.goto(`${base}/console/tenants/${provisioned}`);
    await page.getByRole('button', { name: 'Issue key' }).click();
    const secret = page.locator('output.secret').first();
    await expect.poll(() => secret.textContent()).toMatch(/apk_[A-Za-z0-9]{10}_/);
    const key = (await secret.textContent())!.split(' ')[0]!;
    const prefix = key.slice(0, 'apk_'.length + 10);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-tenant-detail.png'), fullPage: true });
    // The secret lives only in that one response: a fresh load of the page does not contain it.
    const reloaded = await page.request.get(`${base}/console/tenants/${provisioned}`);
    expect(await reloaded.text()).not.toContain(key);

    await page.getByRole('button', { name: `Revoke ${prefix}` }).click();
    await expect
      .poll(async () =>
        page
          .locator('#keys')
          .getByRole('row', { name: new RegExp(`^${prefix}`) })
          .textContent(),
      )
      .toMatch(/revoked/);
    const { rows } = await fx.pool.query(
      `SELECT action, actor FROM control.audit_events WHERE tenant_id = $1 AND evidence->>'prefix' = $2 ORDER BY id`,
      [provisioned, prefix],
    );
    expect(rows).toEqual([
      { action: 'api-key.issued', actor: 'control-plane:console:alice-admin@example.test' },
      { action: 'api-key.revoked', actor: 'control-plane:console:alice-admin@example.test' },
    ]);
  });

  test('suspend and resume need a reason, and each lands in the audit trail', async () => {
    await page.goto(`${base}/console/tenants/${provisioned}`);
    const suspend = page.getByRole('group', { name: 'Suspend' });
    await suspend.getByRole('button', { name: 'Suspend' }).click();
    // The browser refuses the empty required field; nothing was sent.
    expect(
      (await fx.pool.query('SELECT status FROM control.tenants WHERE id = $1', [provisioned])).rows[0],
    ).toEqual({
      status: 'active',
    });
    await suspend.getByLabel('Reason').fill('invoice overdue');
    await suspend.getByRole('button', { name: 'Suspend' }).click();
    await expect.poll(() => page.locator('#summary').textContent()).toMatch(/suspended/);
    const resume = page.getByRole('group', { name: 'Resume' });
    await resume.getByLabel('Reason').fill('invoice paid');
    await resume.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.locator('#summary').textContent()).toMatch(/Status\s*active/);
    const { rows } = await fx.pool.query(
      `SELECT action, reason FROM control.audit_events WHERE tenant_id = $1 AND action IN ('tenant.suspended', 'tenant.resumed') ORDER BY id`,
      [provisioned],
    );
    expect(rows).toEqual([
      { action: 'tenant.suspended', reason: 'invoice overdue' },
      { action: 'tenant.resumed', reason: 'invoice paid' },
    ]);
  });

  test('a <script> audit reason is shown as text, and an injected inline script is blocked by the CSP', async () => {
    await page.goto(`${base}/console/tenants/${provisioned}`);
    await expect
      .poll(() => page.getByRole('cell', { name: /billing dispute/ }).textContent())
      .toContain('<script>');
    expect(await page.title()).not.toBe('owned');
    const violations: string[] = [];
    page.on('console', (m) => violations.push(m.text()));
    // The test runs in Node, so the page-side code is a string: it is evaluated in Chromium.
    const ran = await page.evaluate(`(() => {
      const script = document.createElement('script');
      script.textContent = 'window.injectedRan = true';
      document.body.append(script);
      return window.injectedRan === true;
    })()`);
    expect(ran).toBe(false);
    expect(violations.join('\n')).toMatch(/Content Security Policy/);
  });

  test('a POST without the CSRF token is refused, even with the session cookie', async () => {
    const activeKeys = async () =>
      (
        await fx.pool.query(
          `SELECT count(*)::int AS n FROM control.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL`,
          [provisioned],
        )
      ).rows[0].n;
    const before = await activeKeys();
    const response = await page.request.post(`${base}/console/api/v1/tenants/${provisioned}/api-keys`, {
      headers: { 'content-type': 'application/json' },
      data: {},
    });
    expect(response.status()).toBe(403);
    expect(await activeKeys()).toBe(before);
  });

  test("the costs page shows the daily report's projection chart, and the health page each CronJob's last run", async () => {
    const now = new Date();
    await storeRunInputs(
      fx.pool,
      {
        version: 2,
        now: now.toISOString(),
        period: now.toISOString().slice(0, 7),
        costs: {
          start: `${now.toISOString().slice(0, 7)}-01`,
          end: now.toISOString().slice(0, 10),
          fetchedAt: now.toISOString(),
          problem: null,
          estimated: true,
          latestCostDay: now.toISOString().slice(0, 10),
          dataTime: now.toISOString(),
          pages: 1,
          requests: 1,
          byTenant: { [provisioned]: 0.05 },
          untaggedUsd: 1.5,
        },
        tenants: [
          {
            id: provisioned,
            tier: 'starter',
            status: 'active',
            guardState: 'ok',
            statePeriod: now.toISOString().slice(0, 7),
            pendingState: null,
            pendingRuns: 0,
            agentMinutes: 120,
            apiCalls: 3400,
            overrideExpiresAt: null,
            statusActor: null,
          },
        ],
        config: { ...loadEnvironmentConfig('dev').costGuard, approveSuspend: false, policy: DEFAULT_POLICY },
      },
      'dry-run',
    );
    await page.goto(`${base}/console/costs`);
    await page.getByRole('heading', { name: 'Costs' }).waitFor();
    expect(
      await page
        .getByRole('img', { name: new RegExp(`projected month-end cost of ${provisioned} by day`) })
        .count(),
    ).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-costs.png'), fullPage: true });
    // A drill run as its CronJob runs it, through the wrapper, failing with exit code 2.
    const drill = await runRecorded({
      job: 'dr-drill',
      command: process.execPath,
      args: ['-e', 'process.exit(2)'],
      heartbeatUrl: undefined,
      databaseUrl: fx.db.url,
    });
    expect(drill).toMatchObject({ exitCode: 2, record: 'recorded' });
    await page.goto(`${base}/console/health`);
    await expect.poll(() => page.getByRole('row', { name: /catalog/ }).textContent()).toMatch(/ready/);
    expect(await page.getByRole('row', { name: /^dr-drill/ }).textContent()).toMatch(
      /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*failed with exit code 2/,
    );
    expect(await page.getByRole('row', { name: /^database backups/ }).textContent()).toMatch(
      /not checked: AWS_PROVISIONING is off/,
    );
    expect(await page.getByRole('row', { name: /^cost-guard/ }).textContent()).toMatch(
      /no run recorded; guard run at .*: dry-run/,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-health.png'), fullPage: true });
  });

  test('sign-out ends the session on the server, not only in the browser', async () => {
    const before = (await browser.context.cookies(base)).find((c) => c.name === '__Host-console')!.value;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${base}/console/login`);
    const replay = await fetch(`${base}/console/tenants`, {
      headers: { cookie: `__Host-console=${before}` },
      redirect: 'manual',
    });
    expect(replay.status).toBe(302);
    expect(replay.headers.get('location')).toBe('/console/login');
  });

  test('a viewer sees everything and the server refuses its changes', async () => {
    // Forget the provider's own session too, so the next sign-in asks who is there.
    await browser.context.clearCookies();
    const viewer = await signIn(browser.context, 'victor-viewer');
    await viewer.goto(`${base}/console/tenants/${provisioned}`);
    expect(await viewer.getByRole('button', { name: 'Issue key' }).isDisabled()).toBe(true);
    const token = await viewer.locator('meta[name="csrf-token"]').getAttribute('content');
    const attempt = await viewer.request.post(`${base}/console/api/v1/tenants/${provisioned}/suspend`, {
      headers: { 'content-type': 'application/json', 'x-csrf-token': token! },
      data: { reason: 'viewer trying' },
    });
    expect(attempt.status()).toBe(403);
    expect(await attempt.json()).toEqual({ error: "role 'viewer' may only read" });
    const read = await viewer.request.get(`${base}/console/api/v1/tenants/${provisioned}`);
    expect(read.status()).toBe(200);
    await viewer.close();
  });
});

describe('customer portal in Chromium', () => {
  test('a tenant signs in with its key and sees only its own figures', async () => {
    await browser.context.clearCookies();
    const key = await issueApiKey(fx.pool, provisioned);
    const portal = await browser.context.newPage();
    await portal.goto(`${base}/portal/`);
    await portal.getByLabel('API key').fill(key.key);
    await portal.getByRole('button', { name: 'Sign in' }).click();
    await portal.getByRole('heading', { name: `Usage of ${provisioned}` }).waitFor();
    // The lease granted earlier, with its heartbeat and expiry; the other tenant's task is not listed.
    await app.inject({
      method: 'POST',
      url: '/v1/admission',
      headers: bearer(other.key),
      payload: { taskId: 'other-task' },
    });
    await portal.reload();
    expect(await portal.getByRole('row', { name: /nightly-index-7/ }).textContent()).toMatch(/ago.*in /s);
    const body = await portal.content();
    expect(body).not.toContain('other-task');
    expect(body).toContain(key.prefix);
    expect(body).not.toContain(key.key);
    expect(body).not.toContain(other.id);
    const stored = await portal.evaluate(
      'JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie',
    );
    expect(stored).not.toContain(key.key);
    await portal.screenshot({ path: path.join(SCREENSHOTS, 'portal.png'), fullPage: true });
    // The portal session is no operator credential.
    const crossing = await portal.request.get(`${base}/console/api/v1/tenants/${other.id}`);
    expect(crossing.status()).toBe(401);
    await portal.close();
  });
});

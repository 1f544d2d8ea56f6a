import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type BenchFigure, percentile } from '../../bench/figure.ts';
import { loadEnvironmentConfig } from '../../config/environments.ts';
import { createCatalogDatabase } from '../../tenants/testing/pg.ts';
import { loadControlPlaneConfig } from '../config.ts';
import { buildServer } from '../server.ts';
import { launchChromium, signInToConsole } from './testing/browser.ts';
import {
  freePort,
  startIdentityProvider,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
} from './testing/oidc-provider.ts';

/** The issue's figure; CONSOLE_BENCH_TENANTS sets another scale for a quick look. */
const TENANTS = Number(process.env.CONSOLE_BENCH_TENANTS ?? 10_000);
const REQUESTS_PER_VIEW = 60;
const BROWSER_LOADS = 10;
// Default, sort by usage, a filtered page two thirds in (pro and active are 15% of the tenants), and
// the page before the last by guard state: pages 1, 1, 20 and 199 at 10,000 tenants.
const VIEWS = [
  'sort=id&order=asc&page=1&size=50',
  'sort=agent-minutes&order=desc&page=1&size=50',
  `tier=pro&status=active&sort=cell&order=asc&page=${Math.max(1, Math.floor(((TENANTS * 0.15) / 50) * (2 / 3)))}&size=50`,
  `sort=guard&order=desc&page=${Math.max(1, Math.ceil(TENANTS / 50) - 1)}&size=50`,
];

/**
 * 10,000 tenants across tiers and statuses with a guard state, a full month of usage each (the
 * end-of-month volume, hourly and daily, plus the month before), and a stored guard run billing every tenant.
 */
async function seed(pool: import('pg').Pool): Promise<void> {
  await pool.query(`UPDATE control.cells SET capacity = 20000`);
  await pool.query(
    `INSERT INTO control.tenants (id, tier, status, cell_id)
     SELECT 'bench-' || lpad(i::text, 5, '0'),
            (ARRAY['free','starter','pro','enterprise'])[1 + i % 4],
            (ARRAY['active','active','active','limited','suspended']::control.tenant_status[])[1 + i % 5],
            'cell-1'
       FROM generate_series(1, $1) AS i`,
    [TENANTS],
  );
  // The current month as the ingest writes it (hourly rows beside the daily ones; four reports a day),
  // the month before as daily rows only, as written before hourly metering.
  await pool.query(
    `INSERT INTO control.usage_hourly (tenant_id, hour, agent_minutes, api_calls)
     SELECT t.id, date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(hours => h * 6),
            (random() * 5)::numeric(14, 3), (random() * 200)::bigint
       FROM control.tenants t, generate_series(0, 31 * 4 - 1) AS h
      WHERE h * 6 < extract(day FROM (date_trunc('month', now()) + interval '1 month' - interval '1 day')) * 24`,
  );
  await pool.query(
    `INSERT INTO control.usage (tenant_id, day, agent_minutes, api_calls)
     SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, sum(agent_minutes), sum(api_calls)
       FROM control.usage_hourly GROUP BY 1, 2
     UNION ALL
     SELECT t.id, (date_trunc('month', current_date) - interval '1 month')::date + d,
            (random() * 20)::numeric(14, 3), (random() * 700)::bigint
       FROM control.tenants t, generate_series(0, 30) AS d
      WHERE (date_trunc('month', current_date) - interval '1 month')::date + d < date_trunc('month', current_date)`,
  );
  await pool.query(
    `INSERT INTO control.cost_guard_runs (period, mode, inputs)
     SELECT to_char(now(), 'YYYY-MM'), 'dry-run',
            jsonb_build_object('costs', jsonb_build_object('byTenant', jsonb_object_agg(id, round((random() * 40)::numeric, 2))))
       FROM control.tenants`,
  );
  await pool.query(
    `INSERT INTO control.quota_state (tenant_id, guard_state, period)
     SELECT id, (ARRAY['ok','warning','limited'])[1 + abs(hashtext(id)) % 3], to_char(now(), 'YYYY-MM')
       FROM control.tenants`,
  );
  await pool.query('ANALYZE');
}

/**
 * The tenants page with 10,000 tenants: server time (request to last byte over loopback, signed-in
 * session, four views: default, sort by usage, filtered deep page, last page), and the time until the
 * page is usable in Chromium (navigation to the load event, the deferred script included).
 */
export default async function consoleBench(): Promise<BenchFigure[]> {
  const { db, pool, cells } = await createCatalogDatabase('consolebench', 4);
  const manifestsDir = await mkdtemp(path.join(os.tmpdir(), 'console-bench-'));
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const idp = await startIdentityProvider(`${base}/console/callback`);
  const app = await buildServer({
    cells,
    config: loadControlPlaneConfig({
      JWT_SECRET: 'console-bench-secret-0123456789abcdefghijkl',
      MANIFESTS_DIR: manifestsDir,
      OIDC_ISSUER_URL: idp.issuer,
      OIDC_CLIENT_ID: TEST_CLIENT_ID,
      OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
      OIDC_ALLOW_HTTP: 'true',
      CONSOLE_PUBLIC_URL: base,
      LOG_LEVEL: 'warn',
    }),
    pool,
    redis: null,
    environment: loadEnvironmentConfig('dev'),
    logger: pino({ level: 'warn' }),
  });
  const browser = await launchChromium();
  try {
    console.error(`  seeding ${TENANTS} tenants ...`);
    await seed(pool);
    await app.listen({ port, host: 'localhost' });
    const page = await signInToConsole(browser.context, base, 'bench-viewer');
    const session = (await browser.context.cookies(base)).find((c) => c.name === '__Host-console')!;
    const cookie = `__Host-console=${session.value}`;

    const samples: number[] = [];
    const perView: Record<string, number> = {};
    for (const view of VIEWS) {
      const own: number[] = [];
      for (let i = 0; i < REQUESTS_PER_VIEW + 5; i++) {
        const started = performance.now();
        const response = await fetch(`${base}/console/tenants?${view}`, { headers: { cookie } });
        const body = await response.text();
        const ms = performance.now() - started;
        if (response.status !== 200 || !body.includes('<tbody><tr>')) {
          throw new Error(`tenants page ${view}: HTTP ${response.status}`);
        }
        // The first few warm the JIT and the pool.
        if (i >= 5) own.push(ms);
      }
      samples.push(...own);
      perView[view] = Number(percentile(own, 95).toFixed(2));
    }
    console.error(`  ${samples.length} page requests measured; loading the page in Chromium ...`);

    const loads: number[] = [];
    for (let i = 0; i < BROWSER_LOADS + 1; i++) {
      const started = performance.now();
      await page.goto(`${base}/console/tenants?${VIEWS[0]}`, { waitUntil: 'load' });
      await page.locator('#tenants tbody tr').first().waitFor();
      if (i > 0) loads.push(performance.now() - started);
    }
    // The browser's own navigation timing of the last load: where the time goes.
    const timing = (await page.evaluate(`(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { responseStart: n.responseStart, responseEnd: n.responseEnd,
               domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd };
    })()`)) as Record<string, number>;
    const serverP95 = percentile(samples, 95);
    const usableP95 = percentile(loads, 95);
    return [
      {
        figure: `tenants page, ${TENANTS} tenants: server time p95`,
        value: serverP95,
        unit: 'ms',
        goal: '<= 50 ms',
        pass: serverP95 <= 50,
        detail: {
          requests: samples.length,
          p50: percentile(samples, 50),
          max: Math.max(...samples),
          p95ByView: perView,
        },
      },
      {
        figure: `tenants page, ${TENANTS} tenants: usable in Chromium (p95 of ${BROWSER_LOADS})`,
        value: usableP95,
        unit: 'ms',
        goal: '<= 1000 ms',
        pass: usableP95 <= 1000,
        detail: {
          p50: percentile(loads, 50),
          max: Math.max(...loads),
          lastNavigationMs: Object.fromEntries(
            Object.entries(timing).map(([k, v]) => [k, Number(v.toFixed(1))]),
          ),
        },
      },
    ];
  } finally {
    await browser.close();
    await app.close();
    await idp.close();
    await pool.end();
    await db.drop();
    await rm(manifestsDir, { recursive: true, force: true });
  }
}

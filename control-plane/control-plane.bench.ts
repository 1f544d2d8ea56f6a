import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type BenchFigure, percentile } from '../bench/figure.ts';
import { issueApiKey } from '../tenants/api-keys.ts';
import { migrateCatalog } from '../tenants/catalog/migrate.ts';
import { createTestDatabase, uniqueTenantId } from '../tenants/testing/pg.ts';
import { type ChildService, freePort, startChildService } from './testing/child-service.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
/** Enough enterprise tenants that 50 connections stay well under each tenant's rate limit. */
const TENANTS = 40;
const DURATION_SECONDS = Number(process.env.CONTROL_PLANE_BENCH_SECONDS ?? 10);
const GOAL_RPS = 4_000;
const GOAL_P95_MS = 15;

interface Run {
  readonly requestsPerSecond: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly total: number;
  readonly ok: number;
  readonly rateLimited: number;
  readonly otherNon2xx: number;
  readonly errors: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** Builds a request sequence; `nextKey` hands out the tenants' keys in turn, request by request. */
type Scenario = (nextKey: () => string) => autocannon.Request[];

type Context = { key?: string; taskId?: string };

/** Admit a fresh task, then release it with the same tenant's key: both admission calls, alternating. */
const admissionScenario: Scenario = (nextKey) => [
  {
    method: 'POST',
    path: '/v1/admission',
    setupRequest: (req, context: Context) => {
      context.key = nextKey();
      context.taskId = `t-${randomBytes(6).toString('hex')}`;
      return {
        ...req,
        headers: { authorization: `Bearer ${context.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ taskId: context.taskId }),
      };
    },
  },
  {
    method: 'POST',
    setupRequest: (req, context: Context) => ({
      ...req,
      path: `/v1/admission/${context.taskId}/release`,
      headers: { authorization: `Bearer ${context.key}` },
    }),
  },
];

/** Heartbeats of tasks admitted beforehand, one per tenant; `nextKey` picks the tenant, and its task. */
function heartbeatScenario(taskOf: Map<string, string>): Scenario {
  return (nextKey) => [
    {
      method: 'POST',
      setupRequest: (req) => {
        const key = nextKey();
        return {
          ...req,
          path: `/v1/admission/${taskOf.get(key)}/heartbeat`,
          headers: { authorization: `Bearer ${key}` },
        };
      },
    },
  ];
}

/** One usage report per request, each with its own Idempotency-Key, as the platform sends them. */
const usageScenario: Scenario = (nextKey) => [
  {
    method: 'POST',
    path: '/v1/usage',
    body: JSON.stringify({ agentMinutes: 0.01, apiCalls: 1 }),
    setupRequest: (req) => ({
      ...req,
      headers: {
        authorization: `Bearer ${nextKey()}`,
        'content-type': 'application/json',
        'idempotency-key': randomBytes(8).toString('hex'),
      },
    }),
  },
];

async function load(url: string, keys: string[], connections: number, scenario: Scenario): Promise<Run> {
  let next = 0;
  const samples: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        duration: DURATION_SECONDS,
        // Tenants take turns request by request, so load spreads evenly whatever the connection count.
        requests: scenario(() => keys[next++ % keys.length]!),
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => samples.push(responseTime));
  });
  const stats = (result.statusCodeStats ?? {}) as Record<string, { count: number } | undefined>;
  const count = (code: string) => Number(stats[code]?.count ?? 0);
  const ok = count('200') + count('202');
  const rateLimited = count('429');
  return {
    // 2xx only: an intended 429 is cheap and must not flatter the figure.
    requestsPerSecond: Math.round(ok / result.duration),
    p50: round(percentile(samples, 50)),
    p95: round(percentile(samples, 95)),
    p99: round(percentile(samples, 99)),
    total: result.requests.total,
    ok,
    rateLimited,
    otherNon2xx: result.non2xx - rateLimited,
    errors: result.errors + result.timeouts,
  };
}

/** The same usage load against the bare reference route, so a busy machine shows in both figures. */
async function referenceFigure(keys: string[], keyPrefix: string): Promise<BenchFigure> {
  const reference = await startChildService({
    script: 'control-plane/testing/reference-server.ts',
    env: { REDIS_URL, REDIS_KEY_PREFIX: `${keyPrefix}ref:`, BENCH_KEYS: keys.join(',') },
    port: await freePort(),
  });
  try {
    const run = await load(reference.url, keys, 50, usageScenario);
    return {
      figure: `reference: bare Fastify route (key map, 1 rate-limit point, 2 Redis calls), 50 connections (p50 ${run.p50} ms, p95 ${run.p95} ms, p99 ${run.p99} ms)`,
      value: run.requestsPerSecond,
      unit: 'req/s',
      detail: { ...run },
    };
  } finally {
    await reference.stop();
  }
}

/**
 * `npm run bench -- --only control-plane`: admission and usage ingest against a locally started
 * service on the real PostgreSQL and Redis, at 10 and 50 connections. p95 is computed from every
 * response time autocannon reports (it gives p97.5 and p99 itself, not p95).
 */
export default async function controlPlaneBench(): Promise<BenchFigure[]> {
  const db = await createTestDatabase('cpbench');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const keyPrefix = `cpbench:${randomBytes(4).toString('hex')}:`;
  let service: ChildService | undefined;
  try {
    const client = await pool.connect();
    await migrateCatalog(client).finally(() => client.release());
    const tenantIds: string[] = [];
    const keys: string[] = [];
    for (let i = 0; i < TENANTS; i++) {
      const id = uniqueTenantId('bench');
      await pool.query(
        `INSERT INTO control.tenants (id, tier, status, cell_id) VALUES ($1, 'enterprise', 'active', 'cell-1')`,
        [id],
      );
      tenantIds.push(id);
      keys.push((await issueApiKey(pool, id)).key);
    }
    service = await startChildService({
      script: 'bin/control-plane.ts',
      env: {
        DATABASE_URL: db.url,
        REDIS_URL,
        REDIS_KEY_PREFIX: keyPrefix,
        JWT_SECRET: randomBytes(32).toString('hex'),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      port: await freePort(),
    });
    const { url } = service;
    // Warm the key and tenant caches and the JIT before measuring.
    await load(url, keys, 10, admissionScenario);

    const figures: BenchFigure[] = [await referenceFigure(keys, keyPrefix)];
    // One live lease per tenant for the heartbeat figure; the default 30 s interval keeps it live.
    const taskOf = new Map<string, string>();
    for (const key of keys) {
      const taskId = `hb-${randomBytes(6).toString('hex')}`;
      const res = await fetch(`${url}/v1/admission`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ taskId }),
      });
      if (((await res.json()) as { decision?: string }).decision !== 'allow') {
        throw new Error('heartbeat bench: a task was not admitted');
      }
      taskOf.set(key, taskId);
    }
    let acceptedReports = 0;
    for (const [name, scenario] of [
      ['admission (admit + release)', admissionScenario],
      ['heartbeat', heartbeatScenario(taskOf)],
      ['usage ingest', usageScenario],
    ] as const) {
      for (const connections of [10, 50]) {
        const run = await load(url, keys, connections, scenario);
        if (scenario === usageScenario) acceptedReports += run.ok;
        const atGoal = connections === 50;
        const clean = run.otherNon2xx === 0 && run.errors === 0;
        figures.push(
          {
            figure: `${name}, ${connections} connections: throughput (2xx only)`,
            value: run.requestsPerSecond,
            unit: 'req/s',
            ...(atGoal ? { goal: `>= ${GOAL_RPS}`, pass: run.requestsPerSecond >= GOAL_RPS } : {}),
            detail: { ...run },
          },
          {
            figure: `${name}, ${connections} connections: p95 latency (p50 ${run.p50} ms, p99 ${run.p99} ms)`,
            value: run.p95,
            unit: 'ms',
            ...(atGoal ? { goal: `<= ${GOAL_P95_MS}`, pass: run.p95 <= GOAL_P95_MS } : {}),
          },
          {
            figure: `${name}, ${connections} connections: non-2xx other than 429, plus errors (429s: ${run.rateLimited})`,
            value: run.otherNon2xx + run.errors,
            unit: 'responses',
            goal: '0',
            pass: clean,
          },
        );
      }
    }

    // The service's own count of reports it accepted (autocannon misses replies still in flight at the end),
    // read once the requests autocannon abandoned at the end have finished.
    const acceptedNow = async () =>
      Number(
        /control_plane_usage_reports_total\{duplicate="false"\} (\d+)/.exec(
          await (await fetch(`${url}/metrics`)).text(),
        )?.[1] ?? -1,
      );
    let accepted = await acceptedNow();
    for (let settled = false; !settled; ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const again = await acceptedNow();
      settled = again === accepted;
      accepted = again;
    }
    // Graceful stop flushes the last usage batch; every accepted report must then be in PostgreSQL once.
    await service.stop();
    service = undefined;
    const { rows } = await pool.query<{ calls: string }>(
      'SELECT coalesce(sum(api_calls), 0)::text AS calls FROM control.usage WHERE tenant_id = ANY($1)',
      [tenantIds],
    );
    const persisted = Number(rows[0]!.calls);
    figures.push({
      figure: `usage reports persisted after graceful stop (autocannon saw ${acceptedReports} accepted)`,
      value: persisted,
      unit: 'reports',
      goal: `= ${accepted} accepted by the service`,
      pass: persisted === accepted,
    });
    return figures;
  } finally {
    if (service) await service.stop();
    const redis = new Redis(REDIS_URL);
    let cursor = '0';
    do {
      const [nextCursor, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      if (found.length > 0) await redis.del(...found);
      cursor = nextCursor;
    } while (cursor !== '0');
    await redis.quit();
    await pool.end();
    await db.drop();
  }
}

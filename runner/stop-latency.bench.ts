import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import type { BenchFigure } from '../bench/figure.ts';
import { percentile } from '../bench/figure.ts';
import { bearer, createFixture } from '../control-plane/testing/fixture.ts';
import { transition } from '../tenants/lifecycle/transition.ts';
import { getTier, type TierName } from '../tenants/tiers.ts';
import { TaskRunner, TaskStopped } from './task-runner.ts';

/** Scaled down from the production 30 s so the bench stays short; the tenant cache TTL keeps its 2 s default. */
const HEARTBEAT_MS = Number(process.env.STOP_BENCH_HEARTBEAT_MS ?? 2_000);
const TASKS = Number(process.env.STOP_BENCH_TASKS ?? 30);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Limit = 'limited' | 'suspended' | 'agent-minutes';

/**
 * `npm run bench -- --only stop-latency`: tasks run under the task-runner library against a real control
 * plane (PostgreSQL and Redis), started at random points of their heartbeat cycle; then each tenant hits
 * a limit at one instant, and the figure is the time from that instant to each task's abort. Goal: p95 ≤ 2
 * heartbeat intervals.
 */
export default async function stopLatencyBench(): Promise<BenchFigure[]> {
  const fx = await createFixture('stop_latency');
  try {
    const app = await fx.server({ LEASE_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const figures: BenchFigure[] = [];
    for (const limit of ['limited', 'suspended', 'agent-minutes'] as const) {
      const tier: TierName = limit === 'agent-minutes' ? 'free' : 'pro';
      const tenants = await Promise.all(Array.from({ length: TASKS }, () => fx.tenant(tier)));
      const stoppedAt: number[] = [];
      const reasons = new Set<string>();
      const runs = tenants.map(async (tenant, i) => {
        // Starts spread over one interval, so the limit lands anywhere in each task's heartbeat cycle.
        await sleep((i / TASKS) * HEARTBEAT_MS);
        const runner = new TaskRunner({ baseUrl, apiKey: tenant.key });
        await runner.run(`stop-${i}`, ({ signal }) => {
          return new Promise<void>((resolve) => {
            signal.addEventListener('abort', () => {
              stoppedAt.push(Date.now());
              if (signal.reason instanceof TaskStopped) reasons.add(signal.reason.reason);
              resolve();
            });
          });
        });
      });
      await sleep(HEARTBEAT_MS * 1.5);
      // Measured from the moment the limit is applied, so the time to apply it counts against the figure.
      const limitAt = Date.now();
      await applyLimit(limit, tenants, baseUrl, fx.pool);
      await Promise.all(runs);
      const latencies = stoppedAt.map((t) => (t - limitAt) / HEARTBEAT_MS);
      const p95 = percentile(latencies, 95);
      figures.push({
        figure: `stop latency after ${limit === 'agent-minutes' ? 'the quota ran out' : `the tenant was ${limit}`}, ${TASKS} tasks, heartbeat ${HEARTBEAT_MS} ms (p50 ${percentile(latencies, 50).toFixed(2)}, max ${Math.max(...latencies).toFixed(2)} intervals; reasons ${[...reasons].join(', ')})`,
        value: Math.round(p95 * 100) / 100,
        unit: 'heartbeat intervals (p95)',
        goal: '<= 2',
        pass: p95 <= 2 && stoppedAt.length === TASKS,
        detail: { latencyIntervals: latencies.map((l) => Math.round(l * 1000) / 1000) },
      });
    }
    return figures;
  } finally {
    await fx.close();
  }
}

/** How each limit reaches the control plane in production. */
async function applyLimit(
  limit: Limit,
  tenants: readonly { id: string; key: string }[],
  baseUrl: string,
  pool: pg.Pool,
): Promise<void> {
  if (limit === 'agent-minutes') {
    // The tenant's own report uses up the rest of its month's minutes.
    const quota = getTier('free').agentMinutesPerMonth;
    await Promise.all(
      tenants.map((t) =>
        fetch(`${baseUrl}/v1/usage`, {
          method: 'POST',
          headers: { ...bearer(t.key), 'content-type': 'application/json' },
          body: JSON.stringify({ agentMinutes: quota }),
        }),
      ),
    );
    return;
  }
  // What the cost guard does from its own process: the audited status change with its NOTIFY, which the
  // control plane LISTENs for (control-plane/lifecycle-listener.ts).
  await Promise.all(
    tenants.map(async (t) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await transition(client, { tenantId: t.id, from: 'active', to: limit, actor: 'cost-guard' });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }),
  );
}

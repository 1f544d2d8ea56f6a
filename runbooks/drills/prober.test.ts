import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../tenants/testing/pg.ts';
import {
  findOutages,
  Prober,
  type ProbeSample,
  postgresProbeTarget,
  redisProbeTarget,
  rtoSeconds,
} from './prober.ts';
import { startTcpProxy } from './testing/tcp-proxy.ts';

const sample = (at: number, ok: boolean): ProbeSample => ({
  at,
  ok,
  latencyMs: 1,
  ...(ok ? {} : { error: 'down' }),
});
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RTO from probe samples', () => {
  it('is 0 when no write failed', () => {
    expect(rtoSeconds([sample(0, true), sample(1000, true)])).toBe(0);
  });

  it('runs from the first failed write to the first successful one after it', () => {
    const samples = [
      sample(0, true),
      sample(1000, false),
      sample(2000, false),
      sample(3500, true),
      sample(4500, false),
      sample(5000, true),
    ];
    expect(rtoSeconds(samples)).toBe(2.5);
    expect(findOutages(samples)).toEqual([
      { startedAt: 1000, endedAt: 3500, failedAttempts: 2, firstError: 'down' },
      { startedAt: 4500, endedAt: 5000, failedAttempts: 1, firstError: 'down' },
    ]);
  });

  it('is undefined when writes never recovered', () => {
    expect(rtoSeconds([sample(0, true), sample(1000, false)])).toBeUndefined();
  });
});

describe('PostgreSQL prober through a proxy that goes down', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('drill_prober');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('measures the outage the proxy causes, from first failed write to first success', async () => {
    const proxy = await startTcpProxy('127.0.0.1', 5432);
    const url = new URL(db.url);
    url.port = String(proxy.port);
    const prober = new Prober(postgresProbeTarget(url.toString(), 'r20261124t0000-aaaa', 300), {
      intervalMs: 100,
    });
    let downAt = 0;
    let upAt = 0;
    try {
      prober.start();
      await prober.next((s) => s.ok);
      await wait(300);
      await proxy.stop();
      downAt = Date.now();
      await prober.next((s) => !s.ok);
      await wait(1200);
      await proxy.start();
      upAt = Date.now();
      await prober.next((s) => s.ok);
      await wait(200);
    } finally {
      await prober.stop();
      await proxy.close();
    }
    const samples = prober.samples;
    const outages = findOutages(samples);
    expect(outages).toHaveLength(1);
    const [outage] = outages;
    const rto = rtoSeconds(samples)!;
    expect(rto).toBe((outage!.endedAt! - outage!.startedAt) / 1000);
    // the first failure comes within one interval of the cut, the first success within one of the restart
    expect(rto).toBeGreaterThanOrEqual(1.0);
    expect(rto).toBeLessThan(1.9);
    expect(samples.filter((s) => s.ok).length).toBeGreaterThan(3);
    expect(outage!.startedAt).toBeLessThanOrEqual(downAt + 150);
    expect(outage!.endedAt!).toBeGreaterThanOrEqual(upAt - 150);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const written = await client.query('SELECT count(*)::int AS n FROM dr_drill.probe');
    await client.end();
    expect(written.rows[0].n).toBe(samples.filter((s) => s.ok).length);
  });
});

describe('Redis prober', () => {
  it('writes and reads through a proxy and records the outage while it is down', async () => {
    const proxy = await startTcpProxy('127.0.0.1', 6379);
    const prober = new Prober(
      redisProbeTarget(`redis://127.0.0.1:${proxy.port}`, `r20261124t0000-${Date.now() % 10000}`, 300),
      {
        intervalMs: 100,
      },
    );
    try {
      prober.start();
      await prober.next((s) => s.ok);
      await proxy.stop();
      await prober.next((s) => !s.ok);
      await wait(700);
      await proxy.start();
      await prober.next((s) => s.ok);
    } finally {
      await prober.stop();
      await proxy.close();
    }
    const rto = rtoSeconds(prober.samples)!;
    expect(rto).toBeGreaterThanOrEqual(0.6);
    expect(rto).toBeLessThan(2);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { secretNames } from '../config/names.ts';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { renderPlatformWorkloads } from '../constructs/platform-workloads.ts';
import { type MotoServer, startMoto } from '../tenants/testing/moto.ts';
import { BetterStackClient } from './betterstack-client.ts';
import { main } from './cli.ts';
import { CronScheduleError, longestIntervalSeconds } from './cron-period.ts';
import { declaredResources } from './declared.ts';
import type { MonitorsPlan } from './plan.ts';
import { type BetterStackContractServer, startBetterStackServer } from './testing/betterstack-server.ts';

const TOKEN = 'uptime-test-token';

describe('heartbeat periods come from the CronJob schedules', () => {
  test.each([
    ['17 */6 * * *', 6 * 3600],
    ['30 9 * * 2', 7 * 86_400],
    ['11 * * * *', 3_600],
    ['41 3 * * *', 86_400],
    ['0 0 1 * *', 31 * 86_400],
    ['0 8-18/5 * * 1-5', 3 * 86_400 - 10 * 3600],
  ])('%s -> %i s', (schedule, seconds) => {
    expect(longestIntervalSeconds(schedule)).toBe(seconds);
  });

  test.each(['*/0 * * * *', '60 * * * *', '0 0 * * MON', '* * *'])(
    '%s is refused in one line',
    (schedule) => {
      expect(() => longestIntervalSeconds(schedule)).toThrow(CronScheduleError);
    },
  );

  test("every heartbeat a rendered CronJob reads is declared, with its schedule's period", () => {
    const manifests = renderPlatformWorkloads({
      target: 'eks',
      env: 'staging',
      image: 'registry.example.com/agent-platform:1',
      domain: 'staging.agents.example.com',
      sizes: loadWorkloadsConfig('staging'),
      dataNetworkCidr: '10.20.0.0/16',
      trustProxy: '10.20.0.0/22',
      loadBalancerSourceCidr: '10.20.0.0/22',
    }) as { kind: string; metadata: { name: string }; spec: Record<string, never> }[];
    const declared = declaredResources(loadEnvironmentConfig('staging'), loadWorkloadsConfig('staging'));
    const cronJobs = manifests.filter((m) => m.kind === 'CronJob');
    expect(cronJobs.map((c) => c.metadata.name).sort()).toEqual([
      'billing-export',
      'billing-reconcile',
      'cost-guard',
      'dr-drill',
    ]);
    for (const cron of cronJobs) {
      const spec = cron.spec as unknown as {
        schedule: string;
        startingDeadlineSeconds: number;
        jobTemplate: {
          spec: {
            activeDeadlineSeconds: number;
            template: {
              spec: {
                containers: { env: { name: string; valueFrom?: { secretKeyRef?: { key: string } } }[] }[];
              };
            };
          };
        };
      };
      const key = spec.jobTemplate.spec.template.spec.containers[0]!.env.find(
        (e) => e.name === 'HEARTBEAT_URL',
      )!.valueFrom!.secretKeyRef!.key;
      const heartbeat = declared.find((d) => d.secretKey === key);
      expect(heartbeat?.attributes).toMatchObject({
        period: longestIntervalSeconds(spec.schedule),
        grace: spec.startingDeadlineSeconds + spec.jobTemplate.spec.activeDeadlineSeconds,
      });
    }
  });

  test('prod declares the api uptime monitor, its heartbeats and a status page; dev has BetterStack off', () => {
    const prod = declaredResources(loadEnvironmentConfig('prod'), loadWorkloadsConfig('prod'));
    expect(prod.map((d) => `${d.kind} ${d.identity}`)).toEqual([
      'monitor agent-platform-prod: api /healthz',
      'heartbeat agent-platform-prod: cost-guard',
      'heartbeat agent-platform-prod: billing-export',
      'heartbeat agent-platform-prod: billing-reconcile',
      'heartbeat agent-platform-prod: database-backups',
      'status_page agent-platform-prod-status',
      'status_page_resource agent-platform-prod-status / API',
    ]);
    expect(prod[0]!.attributes.url).toBe('https://api.agents.example.com/healthz');
    expect(declaredResources(loadEnvironmentConfig('dev'), loadWorkloadsConfig('dev'))).toEqual([]);
  });
});

let moto: MotoServer;
let server: BetterStackContractServer;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto.stop();
});
beforeEach(async () => {
  server = await startBetterStackServer({ token: TOKEN, maxPerPage: 2 });
});
afterEach(async () => {
  await server.close();
  await moto.reset();
});

/** Runs the command in-process with its own environment; returns exit code and output. */
async function run(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: { BETTERSTACK_API_URL: server.url, BETTERSTACK_API_TOKEN: TOKEN, ...env },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const writes = () => server.requests.filter((r) => r.method !== 'GET');
const pageId = () => [...server.objects('status-pages').keys()][0]!;
const monitorId = () =>
  [...server.objects('monitors').entries()].find(
    ([, m]) => m.pronounceable_name === 'agent-platform-prod: api /healthz',
  )![0];
const planOf = async (env = 'prod') =>
  JSON.parse((await run(['plan', '--env', env, '--json'])).out) as MonitorsPlan;

describe('plan and apply against the contract server', () => {
  test('apply creates what plan shows; a second plan and apply change nothing', async () => {
    const first = await planOf();
    expect(first.changes.map((c) => `${c.action} ${c.identity}`)).toEqual([
      'create agent-platform-prod: api /healthz',
      'create agent-platform-prod: cost-guard',
      'create agent-platform-prod: billing-export',
      'create agent-platform-prod: billing-reconcile',
      'create agent-platform-prod: database-backups',
      'create agent-platform-prod-status',
      'create agent-platform-prod-status / API',
    ]);
    expect(writes()).toEqual([]);

    const applied = await run(['apply', '--env', 'prod']);
    expect(applied.code).toBe(0);
    expect(applied.out).toContain('Applied 7 change(s).');
    expect(writes().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /api/v2/monitors 201',
      'POST /api/v2/heartbeats 201',
      'POST /api/v2/heartbeats 201',
      'POST /api/v2/heartbeats 201',
      'POST /api/v2/heartbeats 201',
      'POST /api/v2/status-pages 201',
      `POST /api/v2/status-pages/${pageId()}/resources 201`,
    ]);
    const costGuard = [...server.objects('heartbeats').values()].find(
      (h) => h.name === 'agent-platform-prod: cost-guard',
    );
    expect(costGuard).toMatchObject({ period: 21_600, grace: 5_400, paused_at: null });
    const backups = [...server.objects('heartbeats').values()].find(
      (h) => h.name === 'agent-platform-prod: database-backups',
    );
    expect(backups?.paused_at).not.toBeNull();

    const before = writes().length;
    expect(await planOf()).toMatchObject({ changes: [], unchanged: 7 });
    const again = await run(['apply', '--env', 'prod']);
    expect(again.out).toContain('No changes: 7 objects match.');
    expect(writes().length).toBe(before);
  });

  test('a field changed by hand is planned as an update of that field only, and apply restores it', async () => {
    await run(['apply', '--env', 'prod']);
    const [id, heartbeat] = [...server.objects('heartbeats').entries()].find(
      ([, h]) => h.name === 'agent-platform-prod: cost-guard',
    )!;
    heartbeat.period = 3_600;
    heartbeat.sms = true; // not managed here: left alone
    const text = await run(['plan', '--env', 'prod']);
    expect(text.out).toContain(
      `~ heartbeat   agent-platform-prod: cost-guard (id ${id})\n      period: 3600 -> 21600`,
    );
    expect(text.out).toContain('Plan: 0 to create, 1 to update, 0 to delete; 6 unchanged.');
    const before = writes().length;
    await run(['apply', '--env', 'prod']);
    expect(
      writes()
        .slice(before)
        .map((r) => `${r.method} ${r.path}`),
    ).toEqual([`PATCH /api/v2/heartbeats/${id}`]);
    expect(heartbeat).toMatchObject({ period: 21_600, sms: true });
  });

  test('only owned objects are deleted, and a deletion needs --yes', async () => {
    await run(['apply', '--env', 'prod']);
    const handMade = server.seed('monitors', {
      pronounceable_name: 'Checkout page',
      url: 'https://shop.example.com',
      monitor_type: 'status',
    });
    const staging = server.seed('heartbeats', { name: 'agent-platform-staging: cost-guard', period: 21_600 });
    const lookalike = server.seed('heartbeats', {
      name: 'agent-platform-production: nightly',
      period: 86_400,
    });
    const retired = server.seed('heartbeats', { name: 'agent-platform-prod: retired-job', period: 3_600 });

    const plan = await planOf();
    expect(plan.changes).toEqual([
      {
        action: 'delete',
        kind: 'heartbeat',
        identity: 'agent-platform-prod: retired-job',
        id: retired,
        reason: 'not declared',
      },
    ]);
    const before = writes().length;
    const refused = await run(['apply', '--env', 'prod']);
    expect(refused.code).toBe(2);
    expect(refused.err).toBe(
      'monitors: the plan deletes 1 object(s): nothing applied; rerun with --yes to confirm',
    );
    expect(writes().length).toBe(before);

    expect((await run(['apply', '--env', 'prod', '--yes'])).code).toBe(0);
    expect(server.objects('heartbeats').has(retired)).toBe(false);
    for (const [kind, id] of [
      ['monitors', handMade],
      ['heartbeats', staging],
      ['heartbeats', lookalike],
    ] as const) {
      expect(server.objects(kind).has(id)).toBe(true);
    }
  });

  test('apply --expect applies a reviewed plan, and refuses one the account has moved away from', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'monitors-plan-'));
    const saved = path.join(dir, 'plan.json');
    try {
      writeFileSync(saved, (await run(['plan', '--env', 'prod', '--json'])).out);
      server.seed('heartbeats', { name: 'agent-platform-prod: cost-guard', period: 60 });
      const stale = await run(['apply', '--env', 'prod', '--expect', saved]);
      expect(stale.code).toBe(2);
      expect(stale.err).toBe(
        `monitors: the plan changed since ${saved} was written: nothing applied; run plan again and review it`,
      );
      expect(writes()).toEqual([]);
      writeFileSync(saved, (await run(['plan', '--env', 'prod', '--json'])).out);
      expect((await run(['apply', '--env', 'prod', '--expect', saved])).code).toBe(0);
      expect(await planOf()).toMatchObject({ changes: [] });
      writeFileSync(saved, 'not json');
      expect((await run(['apply', '--env', 'prod', '--expect', saved])).err).toBe(
        `monitors: --expect ${saved} is not the output of 'monitors plan --json'`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('lists are read across every page', async () => {
    for (let i = 0; i < 7; i += 1)
      server.seed('monitors', {
        pronounceable_name: `agent-platform-prod: old ${i}`,
        url: 'https://x.example',
        monitor_type: 'status',
      });
    const plan = await planOf();
    expect(plan.changes.filter((c) => c.action === 'delete')).toHaveLength(7);
    const pages = server.requests.filter((r) => r.path.startsWith('/api/v2/monitors') && r.method === 'GET');
    expect(pages.map((r) => new URL(r.path, server.url).searchParams.get('page') ?? '1')).toEqual([
      '1',
      '2',
      '3',
      '4',
    ]);
  });

  test('a 429 is waited out for its Retry-After, then the same request is made again', async () => {
    server.throttle(1, 1);
    const started = Date.now();
    const result = await run(['plan', '--env', 'prod']);
    expect(result.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(server.requests.slice(0, 2).map((r) => `${r.path} ${r.status}`)).toEqual([
      '/api/v2/monitors?per_page=250 429',
      '/api/v2/monitors?per_page=250 200',
    ]);
  });

  test('a Retry-After longer than the client accepts fails in one line instead of hanging', async () => {
    server.throttle(1, 3_600);
    const result = await run(['plan', '--env', 'prod']);
    expect(result.code).toBe(2);
    expect(result.err).toBe(
      'monitors: GET /api/v2/monitors: rate limited, Retry-After 3600 s is longer than 120 s',
    );
  });

  test('the plan JSON for prod', async () => {
    const plan = await planOf();
    expect(plan).toMatchObject({ env: 'prod', ownerPrefix: 'agent-platform-prod', unchanged: 0 });
    expect(plan.changes[1]).toEqual({
      action: 'create',
      kind: 'heartbeat',
      identity: 'agent-platform-prod: cost-guard',
      attributes: { period: 21_600, grace: 5_400, email: true, paused: false },
    });
  });

  test('secret prints the platform-heartbeats Secret with the URLs of the CronJob heartbeats', async () => {
    const early = await run(['secret', '--env', 'prod']);
    expect(early.code).toBe(2);
    expect(early.err).toBe(
      "monitors: heartbeat 'agent-platform-prod: cost-guard' does not exist yet: run monitors apply --env prod first",
    );
    await run(['apply', '--env', 'prod']);
    const secret = parse((await run(['secret', '--env', 'prod'])).out);
    expect(secret).toMatchObject({
      kind: 'Secret',
      metadata: { name: 'platform-heartbeats', namespace: 'platform' },
    });
    expect(Object.keys(secret.stringData)).toEqual(['cost-guard', 'billing-export', 'billing-reconcile']);
    expect(secret.stringData['cost-guard']).toMatch(
      new RegExp(`^${server.url}/api/v1/heartbeat/[0-9a-f]{24}$`),
    );
  });
});

describe('the status page shows the api monitor', () => {
  test('the resource points at the monitor created in the same apply', async () => {
    await run(['apply', '--env', 'prod']);
    const resources = [...server.resourcesOf(pageId()).values()];
    expect(resources).toEqual([
      expect.objectContaining({
        public_name: 'API',
        resource_type: 'Monitor',
        resource_id: Number(monitorId()),
      }),
    ]);
  });

  test('a recreated monitor is re-pointed, and a resource added by hand to the owned page is deleted', async () => {
    await run(['apply', '--env', 'prod']);
    const old = monitorId();
    server.objects('monitors').delete(old);
    const extra = server.seed('heartbeats', { name: 'Someone else', period: 60 });
    const resources = server.resourcesOf(pageId());
    resources.set('77', { public_name: 'Hand-made', resource_type: 'Heartbeat', resource_id: Number(extra) });
    const plan = await planOf();
    expect(plan.changes.map((c) => `${c.action} ${c.identity}`)).toEqual([
      'create agent-platform-prod: api /healthz',
      'update agent-platform-prod-status / API',
      'delete agent-platform-prod-status / Hand-made',
    ]);
    expect(plan.changes[1]).toMatchObject({
      fields: {
        resource_id: { from: old, to: "<id of the new monitor 'agent-platform-prod: api /healthz'>" },
      },
    });
    expect((await run(['apply', '--env', 'prod', '--yes'])).code).toBe(0);
    expect([...resources.values()]).toEqual([
      expect.objectContaining({
        public_name: 'API',
        resource_type: 'Monitor',
        resource_id: Number(monitorId()),
      }),
    ]);
    expect(await planOf()).toMatchObject({ changes: [] });
  });
});

describe('bad input and the token', () => {
  test('without a token (unset variable, no secret) it fails in one line and calls nothing', async () => {
    const result = await run(['apply', '--env', 'prod'], { BETTERSTACK_API_TOKEN: '' });
    expect(result.code).toBe(2);
    expect(result.err).toBe(
      'monitors: no BetterStack token: BETTERSTACK_API_TOKEN is unset and secret agent-platform/prod/betterstack/api-token does not exist',
    );
    expect(server.requests).toEqual([]);
  });

  test('the token is read from Secrets Manager when the variable is unset', async () => {
    const config = loadEnvironmentConfig('prod');
    const secrets = new SecretsManagerClient({ region: config.region });
    await secrets.send(
      new CreateSecretCommand({ Name: secretNames(config).betterStackApiToken, SecretString: TOKEN }),
    );
    secrets.destroy();
    const result = await run(['plan', '--env', 'prod'], { BETTERSTACK_API_TOKEN: '' });
    expect(result.code).toBe(0);
    expect(result.out).toContain('Plan: 7 to create');
  });

  test('a refused token is one line', async () => {
    const result = await run(['plan', '--env', 'prod'], { BETTERSTACK_API_TOKEN: 'wrong' });
    expect(result).toMatchObject({ code: 2 });
    expect(result.err).toBe(
      'monitors: GET /api/v2/monitors answered 401: the API token was refused (check BETTERSTACK_API_TOKEN or its secret)',
    );
  });

  test.each([
    [['plan', '--env', 'dev'], /^monitors: BetterStack is off for dev/],
    [['plan', '--env', 'qa'], /argument 'qa' is invalid/],
    [['plan'], /required option '--env <env>' not specified/],
  ])('%j fails with one line', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.err.split('\n')[0]).toMatch(message);
    expect(server.requests).toEqual([]);
  });

  test('a next-page link to another origin is not followed with the token', async () => {
    const seen: string[] = [];
    const hostile = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ data: [], pagination: { next: 'http://198.51.100.7/api/v2/monitors?page=2' } }),
      );
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    const client = new BetterStackClient({
      token: TOKEN,
      baseUrl: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`,
    });
    await expect(client.list('monitor')).rejects.toThrow(
      /next page is on another origin \(http:\/\/198\.51\.100\.7\)/,
    );
    expect(seen).toEqual(['/api/v2/monitors?per_page=250']);
    await new Promise((resolve) => hostile.close(resolve));
  });
});

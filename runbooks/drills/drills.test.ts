import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateReplicationGroupCommand, ElastiCacheClient } from '@aws-sdk/client-elasticache';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MotoServer, startMoto } from '../../tenants/testing/moto.ts';
import { createTestDatabase, type TestDatabase } from '../../tenants/testing/pg.ts';
import { createElastiCacheClient } from './cache.ts';
import { findDrillResources } from './cleanup.ts';
import { main } from './cli.ts';
import { type DrillDeps, runDrill } from './drills.ts';
import { DrillError } from './errors.ts';
import { type DrillName, type RawDrillOptions, resolveDrillOptions } from './options.ts';
import { createRdsClient } from './rds.ts';
import { toJunit } from './report.ts';
import { type SeedSpec, seedTenantDatabase } from './testing/seed.ts';
import { withClient } from './verify.ts';

const SPEC: SeedSpec = { 'acme-corp': { agents: 2, runs: 5 }, globex: { agents: 1 } };
const SOURCE_ID = 'agent-platform-dev-db';

let moto: MotoServer;
let source: TestDatabase;
let restored: TestDatabase;
let rds: RDSClient;

beforeAll(async () => {
  moto = await startMoto();
  [source, restored] = await Promise.all([
    createTestDatabase('drill_moto_src'),
    createTestDatabase('drill_moto_restored'),
  ]);
  await Promise.all([seedTenantDatabase(source.url, SPEC), seedTenantDatabase(restored.url, SPEC)]);
  rds = createRdsClient();
});

afterAll(async () => {
  await moto?.stop();
  await Promise.all([source?.drop(), restored?.drop()]);
});

beforeEach(async () => {
  await moto.reset();
  await createSource({ MultiAZ: true });
});

async function createSource(extra: { MultiAZ: boolean }) {
  await rds.send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: SOURCE_ID,
      Engine: 'postgres',
      DBInstanceClass: 'db.t4g.medium',
      AllocatedStorage: 20,
      MasterUsername: 'platform_admin',
      MasterUserPassword: 'not-a-real-password',
      BackupRetentionPeriod: 3,
      ...extra,
    }),
  );
}

function options(over: Partial<RawDrillOptions> = {}) {
  return resolveDrillOptions(
    {
      env: 'dev',
      databaseUrl: source.url,
      verifyDatabaseUrl: restored.url,
      redisUrl: 'redis://127.0.0.1:6379',
      probeInterval: 100,
      probeTimeout: 1000,
      observe: 0.3,
      pollInterval: 0.05,
      timeout: 30,
      ...over,
    },
    {},
  );
}

function deps(extra: Partial<DrillDeps> = {}): DrillDeps {
  return { rds, cache: createElastiCacheClient(), log: pino({ level: 'silent' }), ...extra };
}

/** Every instance and manual snapshot moto still holds, apart from the source. */
async function everythingButTheSource(): Promise<string[]> {
  const instances = await rds.send(new DescribeDBInstancesCommand({}));
  const snapshots = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }));
  return [
    ...(instances.DBInstances ?? []).map((i) => i.DBInstanceIdentifier!).filter((id) => id !== SOURCE_ID),
    ...(snapshots.DBSnapshots ?? []).map((s) => `snapshot:${s.DBSnapshotIdentifier}`),
  ];
}

async function run(name: DrillName, over: Partial<RawDrillOptions> = {}, extra: Partial<DrillDeps> = {}) {
  return runDrill(name, options(over), deps(extra));
}

describe('snapshot-restore against moto', () => {
  it('snapshots, restores, verifies every tenant schema, deletes the drill instance and snapshot', async () => {
    const report = await run('snapshot-restore');
    expect(report.error).toBeUndefined();
    expect(report.passed).toBe(true);
    expect(report.checks.map((c) => [c.name, c.passed])).toEqual([
      ['restored data matches the source', true],
      ['restore RTO <= 1800 s', true],
    ]);
    expect(report.measurements.verification).toMatchObject({ schemas: 3, tables: 4, rows: 10 });
    expect([...report.cleanup.deleted].sort()).toEqual([
      `db-instance/agent-platform-dev-drill-restore-${report.runId}`,
      `db-snapshot/agent-platform-dev-drill-restore-${report.runId}`,
    ]);
    expect(report.timeline.map((e) => e.step)).toEqual(
      expect.arrayContaining([
        'snapshot requested',
        'snapshot available',
        'restore requested',
        'restored instance available',
        'cleanup finished',
      ]),
    );
    expect(await everythingButTheSource()).toEqual([]);
    expect(toJunit(report)).toContain('failures="0"');
  });

  it('fails mid-way on a verification mismatch and still leaves nothing behind', async () => {
    await withClient(restored.url, 5000, (c) => c.query('DROP TABLE globex.agents'));
    try {
      const report = await run('snapshot-restore');
      expect(report.passed).toBe(false);
      const check = report.checks.find((c) => c.name === 'restored data matches the source')!;
      expect(check.passed).toBe(false);
      expect(check.detail).toContain("table 'globex.agents' is missing");
      expect(report.cleanup.deleted).toHaveLength(2);
      expect(await everythingButTheSource()).toEqual([]);
      expect(toJunit(report)).toMatch(
        /<failure message="1 problem\(s\): table &apos;|<failure message="1 problem\(s\): table 'globex/,
      );
    } finally {
      await seedTenantDatabase(restored.url, { globex: { agents: 1 } });
    }
  });

  it('stops at an interruption while waiting for the restore and deletes what it created', async () => {
    const controller = new AbortController();
    const report = await run(
      'snapshot-restore',
      {},
      {
        signal: controller.signal,
        progress: (line) => {
          if (line.includes('restore requested')) controller.abort();
        },
      },
    );
    expect(report.interrupted).toBe(true);
    expect(report.passed).toBe(false);
    expect(report.error).toMatch(/interrupted during 'waiting for 'agent-platform-dev-drill-restore-/);
    expect(report.cleanup.deleted).toHaveLength(2);
    expect(await everythingButTheSource()).toEqual([]);
  });

  it('reports a missing source instance in one line and creates nothing', async () => {
    const report = await run('snapshot-restore', { dbInstance: 'agent-platform-dev-nope' });
    expect(report.passed).toBe(false);
    expect(report.error).toBe(
      "DB instance 'agent-platform-dev-nope' not found: pass '--db-instance <id>' or deploy the data stack",
    );
    expect(report.cleanup).toEqual({ deleted: [], failed: [] });
  });
});

describe('pitr against moto', () => {
  it('restores to the latest restorable time, measures RPO and cleans up', async () => {
    const report = await run('pitr');
    expect(report.error).toBeUndefined();
    expect(report.passed).toBe(true);
    const { rpoSeconds, restorePoint, sourceLastWriteAt } = report.measurements as {
      rpoSeconds: number;
      restorePoint: string;
      sourceLastWriteAt: string;
    };
    expect(rpoSeconds).toBeGreaterThanOrEqual(0);
    expect(rpoSeconds).toBe(Math.max(0, (Date.parse(sourceLastWriteAt) - Date.parse(restorePoint)) / 1000));
    expect(report.checks.map((c) => c.name)).toEqual([
      'restored data matches the source',
      'RPO <= 300 s',
      'restore RTO <= 1800 s',
    ]);
    expect(report.cleanup.deleted).toEqual([`db-instance/agent-platform-dev-drill-pitr-${report.runId}`]);
    expect(await everythingButTheSource()).toEqual([]);
  });

  it('misses the RPO target when the configured target is smaller than the measured lag', async () => {
    const o = options();
    const strict = { ...o, config: { ...o.config, drills: { ...o.config.drills, rpoSeconds: 0.000001 } } };
    await new Promise((r) => setTimeout(r, 50));
    const report = await runDrill('pitr', strict, deps());
    expect(report.checks.find((c) => c.name.startsWith('RPO'))?.passed).toBe(false);
    expect(report.passed).toBe(false);
    expect(await everythingButTheSource()).toEqual([]);
  });
});

describe('rds-failover against moto', () => {
  it('reboots a Multi-AZ instance with failover while probing, and notes that moto changes nothing', async () => {
    const report = await run('rds-failover');
    expect(report.error).toBeUndefined();
    expect(report.passed).toBe(true);
    expect(report.measurements.rtoSeconds).toBe(0);
    expect(report.measurements.probeAttempts).toBeGreaterThan(2);
    expect(report.notes.join('\n')).toMatch(/moto accepts ForceFailover and changes nothing/);
    expect(report.timeline.map((e) => e.step)).toContain('failover requested');
  });

  it('refuses a single-AZ instance', async () => {
    await moto.reset();
    await createSource({ MultiAZ: false });
    const report = await run('rds-failover');
    expect(report.error).toBe(
      "DB instance 'agent-platform-dev-db' is not Multi-AZ: a forced failover would be a plain reboot",
    );
  });

  it('fails over a Multi-AZ DB cluster and checks that the writer moved', async () => {
    const cluster = 'agent-platform-dev-db-cluster';
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: cluster,
        Engine: 'postgres',
        DBClusterInstanceClass: 'db.m6gd.large',
        AllocatedStorage: 100,
        StorageType: 'io1',
        Iops: 1000,
        MasterUsername: 'platform_admin',
        MasterUserPassword: 'not-a-real-password',
      }),
    );
    for (const member of ['a', 'b']) {
      await rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: `${cluster}-${member}`,
          DBClusterIdentifier: cluster,
          Engine: 'postgres',
          DBInstanceClass: 'db.m6gd.large',
        }),
      );
    }
    const report = await run('rds-failover', { topology: 'multi-az-cluster' });
    expect(report.error).toBeUndefined();
    expect(report.checks.find((c) => c.name === 'cluster writer moved')).toMatchObject({
      passed: true,
      detail: `${cluster}-a -> ${cluster}-b`,
    });
    expect(report.passed).toBe(true);
  });
});

describe('cache-failover against moto', () => {
  it('reports that moto does not implement TestFailover instead of crashing', async () => {
    await new ElastiCacheClient({}).send(
      new CreateReplicationGroupCommand({
        ReplicationGroupId: 'agent-platform-dev-cache',
        ReplicationGroupDescription: 'drill test',
        Engine: 'redis',
        CacheNodeType: 'cache.t4g.small',
        NumCacheClusters: 2,
        AutomaticFailoverEnabled: true,
      }),
    );
    const report = await run('cache-failover');
    expect(report.passed).toBe(false);
    expect(report.error).toMatch(
      /^ElastiCache TestFailover is not supported by the endpoint http:\/\/127\.0\.0\.1:\d+: HTTP 500/,
    );
    expect(report.checks.find((c) => c.name === 'TestFailover accepted')?.passed).toBe(false);
  });
});

describe('cleanup', () => {
  async function leftover(id: string, runId: string, env: string) {
    const Tags = [
      { Key: 'dr-drill', Value: runId },
      { Key: 'dr-drill-env', Value: env },
    ];
    await rds.send(
      new CreateDBSnapshotCommand({ DBInstanceIdentifier: SOURCE_ID, DBSnapshotIdentifier: id, Tags }),
    );
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        Engine: 'postgres',
        DBInstanceClass: 'db.t4g.medium',
        AllocatedStorage: 20,
        MasterUsername: 'x',
        MasterUserPassword: 'not-a-real-password',
        Tags,
      }),
    );
  }

  it('finds only tagged, drill-named resources of the environment; dry run deletes nothing; --yes deletes', async () => {
    await leftover('agent-platform-dev-drill-restore-r20261124t0100-abcd', 'r20261124t0100-abcd', 'dev');
    await leftover(
      'agent-platform-staging-drill-restore-r20261124t0100-abcd',
      'r20261124t0100-abcd',
      'staging',
    );
    // tagged but not drill-named: never touched
    await rds.send(
      new CreateDBSnapshotCommand({
        DBInstanceIdentifier: SOURCE_ID,
        DBSnapshotIdentifier: 'agent-platform-dev-before-upgrade',
        Tags: [
          { Key: 'dr-drill', Value: 'r20261124t0100-abcd' },
          { Key: 'dr-drill-env', Value: 'dev' },
        ],
      }),
    );
    expect((await findDrillResources(rds, 'dev')).map((r) => `${r.kind}/${r.id}`).sort()).toEqual([
      'db-instance/agent-platform-dev-drill-restore-r20261124t0100-abcd',
      'db-snapshot/agent-platform-dev-drill-restore-r20261124t0100-abcd',
    ]);

    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    expect(await main(['cleanup', '--env', 'dev', '--dry-run'], io)).toBe(0);
    expect(out.at(-1)).toBe('dry run: 2 resource(s) would be deleted');
    expect(await findDrillResources(rds, 'dev')).toHaveLength(2);

    expect(await main(['cleanup', '--env', 'dev'], io)).toBe(2);
    expect(out.at(-1)).toBe("dr-drill: not a terminal: pass '--yes' to delete without a prompt");

    const declined = { ...io, ask: async () => 'no' };
    expect(await main(['cleanup', '--env', 'dev'], declined)).toBe(1);
    expect(await findDrillResources(rds, 'dev')).toHaveLength(2);

    expect(await main(['cleanup', '--env', 'dev', '--yes'], io)).toBe(0);
    expect(out.at(-1)).toBe('deleted 2, failed 0');
    expect((await everythingButTheSource()).sort()).toEqual([
      'agent-platform-staging-drill-restore-r20261124t0100-abcd',
      'snapshot:agent-platform-dev-before-upgrade',
      'snapshot:agent-platform-staging-drill-restore-r20261124t0100-abcd',
    ]);
  });

  it('refuses prod without --confirm prod', async () => {
    const err: string[] = [];
    const io = { out: () => {}, err: (t: string) => err.push(t) };
    expect(await main(['cleanup', '--env', 'prod', '--dry-run'], io)).toBe(2);
    expect(await main(['pitr', '--env', 'prod'], io)).toBe(2);
    expect(err).toEqual([
      "dr-drill: refusing to run against 'prod' without '--confirm prod' (got '')",
      "dr-drill: refusing to run against 'prod' without '--confirm prod' (got '')",
    ]);
  });
});

describe('the CLI', () => {
  it('runs a drill, prints the summary and writes the JSON report and the JUnit file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dr-drill-'));
    try {
      const out: string[] = [];
      const code = await main(
        [
          'snapshot-restore',
          '--env',
          'dev',
          '--database-url',
          source.url,
          '--verify-database-url',
          restored.url,
          '--poll-interval',
          '0.05',
          '--report',
          join(dir, 'r.json'),
          '--junit',
          join(dir, 'r.xml'),
        ],
        { out: (t) => out.push(t), err: () => {} },
      );
      expect(code).toBe(0);
      const summary = out.at(-1)!;
      expect(summary).toMatch(/dr-drill snapshot-restore on dev \(run r\d{8}t\d{4}-[0-9a-f]{4}\): PASSED/);
      expect(summary).toMatch(/RTO: \d+\.\d s \(target <= 1800 s\)/);
      expect(summary).toContain('restored instance available');
      const report = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'));
      expect(report).toMatchObject({ drill: 'snapshot-restore', env: 'dev', passed: true });
      const junit = await readFile(join(dir, 'r.xml'), 'utf8');
      expect(junit).toContain('<testsuite name="dr-drill.snapshot-restore.dev" tests="2" failures="0"');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('cleans up and exits 130 when the process gets SIGINT mid-drill', async () => {
    // the verification target refuses connections, so the drill sits in its retry loop until interrupted
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/dr-drill.ts',
        'snapshot-restore',
        '--env',
        'dev',
        '--database-url',
        source.url,
        '--verify-database-url',
        'postgresql://postgres@127.0.0.1:1/none',
        '--poll-interval',
        '0.2',
        '--timeout',
        '60',
        '--report',
        join(tmpdir(), `dr-sigint-${process.pid}.json`),
        '--junit',
        join(tmpdir(), `dr-sigint-${process.pid}.xml`),
      ],
      { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (output.includes('verifying restored data')) resolve();
      });
      child.stderr.on('data', (chunk) => {
        output += chunk;
      });
    });
    expect(await everythingButTheSource()).toHaveLength(2);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(output).toContain('interrupted: cleaning up drill resources');
    expect(output).toMatch(/cleanup: 2 deleted .* 0 failed/);
    expect(await everythingButTheSource()).toEqual([]);
  });

  it('rejects a bad option value in one line that quotes it', async () => {
    const err: string[] = [];
    expect(
      await main(['pitr', '--env', 'dev', '--probe-interval', 'fast'], {
        out: () => {},
        err: (t) => err.push(t),
      }),
    ).toBe(2);
    expect(err).toEqual([expect.stringMatching(/^dr-drill: '--probe-interval' .* \(got "fast"\)$/)]);
  });
});

describe('the drill registry', () => {
  it('refuses an unknown drill by name before anything runs, instead of running cache-failover', async () => {
    const progress: string[] = [];
    await expect(
      run('cache-failure' as DrillName, {}, { progress: (line) => progress.push(line) }),
    ).rejects.toThrow(
      new DrillError(
        "unknown drill 'cache-failure': expected one of rds-failover, snapshot-restore, pitr, cache-failover",
      ),
    );
    expect(progress).toEqual([]);
  });
});

import { CreateReplicationGroupCommand } from '@aws-sdk/client-elasticache';
import { CreateDBInstanceCommand } from '@aws-sdk/client-rds';
import { pino } from 'pino';
import { startMoto } from '../../tenants/testing/moto.ts';
import { createTestDatabase } from '../../tenants/testing/pg.ts';
import { createElastiCacheClient } from './cache.ts';
import { runDrill } from './drills.ts';
import { DRILL_NAMES, resolveDrillOptions } from './options.ts';
import { createRdsClient } from './rds.ts';
import type { DrillReport } from './report.ts';
import { seedTenantDatabase } from './testing/seed.ts';
import { startTcpProxy } from './testing/tcp-proxy.ts';

export interface LocalRunOptions {
  /** How long the proxied database is down during rds-failover; @default 3000 */
  readonly outageMs?: number;
  readonly progress?: (line: string) => void;
}

/**
 * Runs every drill against a private moto_server and the local PostgreSQL and Redis: for `npm run demo` and for
 * measuring drill timings on a laptop. moto changes nothing on a failover, so rds-failover probes through a TCP
 * proxy that is cut for `outageMs` to show a real RTO; cache-failover fails because moto has no TestFailover.
 */
export async function runDrillsLocally(options: LocalRunOptions = {}): Promise<DrillReport[]> {
  const outageMs = options.outageMs ?? 3000;
  const moto = await startMoto();
  const [source, restored] = await Promise.all([
    createTestDatabase('drill_local_src'),
    createTestDatabase('drill_local_restored'),
  ]);
  const proxy = await startTcpProxy('127.0.0.1', Number(new URL(source.url).port || 5432));
  try {
    const spec = { 'acme-corp': { agents: 20, runs: 5000 }, globex: { agents: 5, runs: 1200, invoices: 40 } };
    await Promise.all([seedTenantDatabase(source.url, spec), seedTenantDatabase(restored.url, spec)]);
    const rds = createRdsClient();
    const cache = createElastiCacheClient();
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'agent-platform-dev-db',
        Engine: 'postgres',
        DBInstanceClass: 'db.t4g.medium',
        AllocatedStorage: 20,
        MasterUsername: 'platform_admin',
        MasterUserPassword: 'not-a-real-password',
        MultiAZ: true,
        BackupRetentionPeriod: 3,
      }),
    );
    await cache.send(
      new CreateReplicationGroupCommand({
        ReplicationGroupId: 'agent-platform-dev-cache',
        ReplicationGroupDescription: 'local drill run',
        Engine: 'redis',
        CacheNodeType: 'cache.t4g.small',
        NumCacheClusters: 2,
        AutomaticFailoverEnabled: true,
      }),
    );
    const proxied = new URL(source.url);
    proxied.port = String(proxy.port);
    let outage: Promise<void> = Promise.resolve();
    const cutDatabase = async () => {
      await proxy.stop();
      await new Promise((r) => setTimeout(r, outageMs));
      await proxy.start();
    };
    const deps = {
      rds,
      cache,
      log: pino({ level: 'silent' }),
      progress: (line: string) => {
        // the outage starts when the failover is requested, as it would on AWS
        if (line.includes('failover requested: RebootDBInstance')) outage = cutDatabase();
        options.progress?.(line);
      },
    };
    const reports: DrillReport[] = [];
    for (const name of DRILL_NAMES) {
      const o = resolveDrillOptions(
        {
          env: 'dev',
          databaseUrl: name === 'rds-failover' ? proxied.toString() : source.url,
          verifyDatabaseUrl: restored.url,
          redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
          probeInterval: 250,
          probeTimeout: 500,
          observe: name === 'rds-failover' ? (outageMs + 2000) / 1000 : 1,
          pollInterval: 0.2,
          timeout: 60,
        },
        {},
      );
      reports.push(await runDrill(name, o, deps));
      await outage;
    }
    return reports;
  } finally {
    await proxy.close();
    await moto.stop();
    await Promise.all([source.drop(), restored.drop()]);
  }
}

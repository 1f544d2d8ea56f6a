import { CreateDBInstanceCommand, CreateDBSnapshotCommand, RDSClient } from '@aws-sdk/client-rds';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MotoServer, startMoto } from '../../tenants/testing/moto.ts';
import { RdsBackupWatch } from './backups.ts';

let moto: MotoServer;
let rds: RDSClient;

beforeAll(async () => {
  moto = await startMoto();
  rds = new RDSClient({});
});

afterAll(async () => {
  await moto?.stop();
});

describe('RDS backups on the Health page', () => {
  test('the latest automated snapshot is the last run; manual snapshots do not count; looked up once per five minutes', async () => {
    const instance = 'backups-test-db';
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instance,
        DBInstanceClass: 'db.t3.micro',
        Engine: 'postgres',
        MasterUsername: 'app',
        MasterUserPassword: 'not-a-real-password',
        AllocatedStorage: 20,
        BackupRetentionPeriod: 7,
      }),
    );
    let now = Date.now();
    const watch = new RdsBackupWatch(rds, instance, () => now);
    const first = await watch.latest();
    expect(first).toMatchObject({ job: `database backups (RDS ${instance})`, exitCode: 0 });
    expect(Math.abs(first.lastRunAt!.getTime() - Date.now())).toBeLessThan(60_000);
    // A manual snapshot later is no backup run, and the cached answer holds for five minutes.
    await rds.send(
      new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: 'by-hand' }),
    );
    now += 60_000;
    expect(await watch.latest()).toBe(first);
    now += 5 * 60_000;
    expect((await watch.latest()).lastRunAt).toEqual(first.lastRunAt);
  });

  test('an instance without automated snapshots says so', async () => {
    expect(await new RdsBackupWatch(rds, 'no-such-db').latest()).toMatchObject({
      lastRunAt: null,
      detail: 'no automated snapshot available',
    });
  });

  test('RDS out of reach is shown as unknown, not as a failure of the page', async () => {
    const unreachable = new RDSClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    const run = await new RdsBackupWatch(unreachable, 'backups-test-db').latest();
    expect(run).toMatchObject({ lastRunAt: null, exitCode: null });
    expect(run.detail).toMatch(/^unknown: RDS did not answer \(.*ECONNREFUSED/);
  });
});

import {
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  InvalidDBInstanceStateFault,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { type DrillResource, deleteDrillResources } from './cleanup.ts';

// moto deletes at once; a restore that is still backing up (InvalidDBInstanceState) only happens on AWS.
const rdsMock = mockClient(RDSClient);
afterEach(() => rdsMock.reset());

const busy = () =>
  new InvalidDBInstanceStateFault({ message: 'Instance is currently backing-up', $metadata: {} });
const instance: DrillResource = {
  kind: 'db-instance',
  id: 'agent-platform-dev-drill-restore-r20261124t0100-abcd',
  runId: 'r20261124t0100-abcd',
  status: 'backing-up',
};
const snapshot: DrillResource = { ...instance, kind: 'db-snapshot', status: 'available' };

describe('deleteDrillResources', () => {
  it('waits out a state RDS will not delete from, then deletes, instances before snapshots', async () => {
    rdsMock.on(DeleteDBInstanceCommand).rejectsOnce(busy()).rejectsOnce(busy()).resolves({});
    rdsMock.on(DeleteDBSnapshotCommand).resolves({});
    const result = await deleteDrillResources(new RDSClient({}), [snapshot, instance], undefined, {
      retryUntil: Date.now() + 5000,
      pollIntervalMs: 10,
    });
    expect(result).toEqual({
      deleted: [`db-instance/${instance.id}`, `db-snapshot/${snapshot.id}`],
      failed: [],
    });
    expect(rdsMock.commandCalls(DeleteDBInstanceCommand)).toHaveLength(3);
    expect(rdsMock.commandCalls(DeleteDBInstanceCommand)[0]!.args[0].input).toEqual({
      DBInstanceIdentifier: instance.id,
      SkipFinalSnapshot: true,
      DeleteAutomatedBackups: true,
    });
  });

  it('gives up at the deadline, reports the leftover, and still deletes the rest', async () => {
    rdsMock.on(DeleteDBInstanceCommand).rejects(busy());
    rdsMock.on(DeleteDBSnapshotCommand).resolves({});
    const errors: string[] = [];
    const result = await deleteDrillResources(
      new RDSClient({}),
      [instance, snapshot],
      (r, e) => errors.push(`${r.id}: ${e.message}`),
      { retryUntil: Date.now() + 50, pollIntervalMs: 10 },
    );
    expect(result).toEqual({
      deleted: [`db-snapshot/${snapshot.id}`],
      failed: [`db-instance/${instance.id}`],
    });
    expect(errors).toEqual([`${instance.id}: Instance is currently backing-up`]);
  });
});

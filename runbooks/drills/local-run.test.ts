import { describe, expect, it } from 'vitest';
import { runDrillsLocally } from './local-run.ts';

describe('runDrillsLocally', () => {
  it('runs the four drills against moto and the local servers, measuring the cut as the failover RTO', async () => {
    const reports = await runDrillsLocally({ outageMs: 1500 });
    expect(reports.map((r) => [r.drill, r.passed])).toEqual([
      ['rds-failover', true],
      ['snapshot-restore', true],
      ['pitr', true],
      ['cache-failover', false],
    ]);
    const rto = reports[0]!.measurements.rtoSeconds!;
    // probes every 250 ms: the measured outage is the cut, give or take one interval plus the probe timeout
    expect(rto).toBeGreaterThanOrEqual(1.0);
    expect(rto).toBeLessThan(2.5);
    expect(reports[3]!.error).toMatch(/moto does not implement TestFailover/);
    expect(reports.flatMap((r) => r.cleanup.failed)).toEqual([]);
  });
});

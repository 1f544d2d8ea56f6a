import { CostExplorerClient, GetCostAndUsageCommand } from '@aws-sdk/client-cost-explorer';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, test } from 'vitest';
import { CostDataError, costQuery, fetchCosts, parseCostPage } from './costs.ts';
import { cePage } from './fixtures.ts';

// moto cannot throttle, so throttling alone is simulated with aws-sdk-client-mock.
const ce = mockClient(CostExplorerClient);
const NOW = new Date('2026-11-24T12:00:00Z');
const noWait = { sleep: async () => {}, baseDelayMs: 1 };

function throttled(): Error {
  return Object.assign(new Error('Rate exceeded'), { name: 'LimitExceededException', $fault: 'client' });
}

afterEach(() => {
  ce.reset();
});

describe('fetchCosts', () => {
  test('asks for month to date in UTC, day by day, grouped by the tenant tag', () => {
    expect(costQuery(NOW)).toEqual({
      TimePeriod: { Start: '2026-11-01', End: '2026-11-25' },
      Granularity: 'DAILY',
      Metrics: ['UnblendedCost'],
      GroupBy: [{ Type: 'TAG', Key: 'tenant' }],
    });
    expect(costQuery(new Date('2026-11-30T23:30:00Z')).TimePeriod).toEqual({
      Start: '2026-11-01',
      End: '2026-12-01',
    });
  });

  test('a throttled call is retried with backoff and then succeeds', async () => {
    const delays: number[] = [];
    ce.on(GetCostAndUsageCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(throttled())
      .resolves(cePage([['acme', '1.5']]) as never);
    const costs = await fetchCosts(NOW, {
      client: new CostExplorerClient({}),
      baseDelayMs: 100,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
    expect(costs).toMatchObject({ problem: null, requests: 3, pages: 1, byTenant: { acme: 1.5 } });
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  test('a call throttled beyond the bound gives up and marks the data unknown, not zero', async () => {
    ce.on(GetCostAndUsageCommand).rejects(throttled());
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), maxAttempts: 3, ...noWait });
    expect(costs.problem).toBe('Cost Explorer throttled page 1 3 times');
    expect(costs.requests).toBe(3);
    expect(costs.byTenant).toEqual({});
  });

  test('other errors are not retried', async () => {
    ce.on(GetCostAndUsageCommand).rejects(
      Object.assign(new Error('denied'), { name: 'AccessDeniedException' }),
    );
    await expect(fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait })).rejects.toThrow(
      'denied',
    );
    expect(ce.calls()).toHaveLength(1);
  });

  test('follows every page and keeps the untagged bucket apart', async () => {
    ce.on(GetCostAndUsageCommand, { NextPageToken: undefined })
      .resolves(
        cePage(
          [
            ['acme', '1'],
            [null, '2'],
          ],
          { nextPageToken: 't2' },
        ) as never,
      )
      .on(GetCostAndUsageCommand, { NextPageToken: 't2' })
      .resolves(
        cePage([
          ['globex', '3'],
          [null, '0.5'],
        ]) as never,
      );
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait });
    expect(costs).toMatchObject({
      problem: null,
      pages: 2,
      requests: 2,
      byTenant: { acme: 1, globex: 3 },
      untaggedUsd: 2.5,
      estimated: true,
      latestCostDay: '2026-11-24',
      dataTime: NOW.toISOString(),
    });
  });

  test('sums every day of the month and dates the data by the latest day carrying cost', async () => {
    const page = cePage([['acme', '1.25']], { costDay: '2026-11-20' });
    page.ResultsByTime[2]!.Groups.push({
      Keys: ['tenant$acme'],
      Metrics: { UnblendedCost: { Amount: '0.75', Unit: 'USD' } },
    });
    ce.on(GetCostAndUsageCommand).resolves(page as never);
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait });
    expect(costs).toMatchObject({
      problem: null,
      byTenant: { acme: 2 },
      latestCostDay: '2026-11-20',
      dataTime: '2026-11-21T00:00:00.000Z',
    });
  });

  test('days with zero cost do not make the data look fresh', async () => {
    const page = cePage([['acme', '3']], { costDay: '2026-11-18' });
    page.ResultsByTime[23]!.Groups.push({
      Keys: ['tenant$acme'],
      Metrics: { UnblendedCost: { Amount: '0', Unit: 'USD' } },
    });
    ce.on(GetCostAndUsageCommand).resolves(page as never);
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait });
    expect(costs.latestCostDay).toBe('2026-11-18');
  });

  test('a day that carries no cost at all leaves no data time', async () => {
    ce.on(GetCostAndUsageCommand).resolves(cePage([]) as never);
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait });
    expect(costs).toMatchObject({ problem: null, latestCostDay: null, dataTime: null });
  });

  test('an unreachable Cost Explorer is one line, not a stack trace', async () => {
    ce.on(GetCostAndUsageCommand).rejects(
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { name: 'Error' }),
    );
    await expect(fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait })).rejects.toThrow(
      new CostDataError(
        'Cost Explorer GetCostAndUsage failed on page 1: Error: connect ECONNREFUSED 127.0.0.1:9; no action taken',
      ),
    );
  });

  test('a result that is not one day of the month is unknown', async () => {
    const page = cePage([['acme', '1']]);
    page.ResultsByTime[0]!.TimePeriod.End = '2026-11-25';
    ce.on(GetCostAndUsageCommand).resolves(page as never);
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait });
    expect(costs.problem).toMatch(/returned 2026-11-01 to 2026-11-25, not one day/);
  });

  test('a partial period is unknown', async () => {
    ce.on(GetCostAndUsageCommand).resolves(cePage([['acme', '1']], { start: '2026-11-10' }) as never);
    const costs = await fetchCosts(NOW, { client: new CostExplorerClient({}), ...noWait });
    expect(costs.problem).toMatch(/partial period starting 2026-11-10/);
  });
});

describe('parseCostPage', () => {
  test('names the bad field and its value in one line', () => {
    const page = cePage([['acme', '1']], { costDay: '2026-11-01' });
    page.ResultsByTime[0]!.Groups[0]!.Keys = ['tenant$Not_Valid'];
    expect(() => parseCostPage(page, 1)).toThrow(CostDataError);
    expect(() => parseCostPage(page, 1)).toThrow(
      `Cost Explorer page 1 rejected: 'ResultsByTime.0.Groups.0.Keys.0' ("tenant$Not_Valid") must name a valid tenant id after 'tenant$'; no action taken`,
    );
  });
});

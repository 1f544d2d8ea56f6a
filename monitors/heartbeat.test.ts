import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runWithHeartbeat } from './heartbeat.ts';

const pings: string[] = [];
const server = createServer((request, response) => {
  pings.push(request.url ?? '');
  response.end('ok');
});
let url = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/heartbeat/test-token`;
});
afterAll(() => server.close());

describe('runWithHeartbeat', () => {
  test('a run that exits 0 pings the heartbeat once', async () => {
    pings.length = 0;
    expect(await runWithHeartbeat(process.execPath, ['-e', 'process.exit(0)'], url)).toEqual({
      exitCode: 0,
      heartbeat: 'sent',
    });
    expect(pings).toEqual(['/api/v1/heartbeat/test-token']);
  });

  test('a failed run keeps its exit code and sends no ping', async () => {
    pings.length = 0;
    expect(await runWithHeartbeat(process.execPath, ['-e', 'process.exit(3)'], url)).toEqual({
      exitCode: 3,
      heartbeat: 'skipped',
    });
    expect(pings).toEqual([]);
  });

  test('an unreachable heartbeat does not fail a successful run', async () => {
    const result = await runWithHeartbeat(process.execPath, ['-e', ''], 'http://127.0.0.1:9/none');
    expect(result.exitCode).toBe(0);
    expect(result.heartbeat).not.toBe('sent');
  });
});

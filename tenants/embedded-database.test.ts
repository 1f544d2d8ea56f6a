import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openDatabase } from './embedded-database.ts';
import { DatabaseUnavailableError } from './errors.ts';

let dataDir: string;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'embedded-pg-'));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

test('starts a migrated embedded PostgreSQL 15, reuses a running one, and reopens the same data', async () => {
  const port = await freePort();
  const first = await openDatabase({ dataDir, port });
  try {
    expect(first.embedded).toBe(true);
    expect(first.url).toBe(`postgresql://postgres@127.0.0.1:${port}/agent_platform`);
    const { rows } = await first.pool.query(
      "SELECT current_setting('server_version_num')::int / 10000 AS major",
    );
    expect(rows[0].major).toBe(15);
    await first.pool.query("INSERT INTO control.cells (id, capacity) VALUES ('cell-kept', 1)");
    const second = await openDatabase({ dataDir, port });
    expect((await second.pool.query("SELECT id FROM control.cells WHERE id = 'cell-kept'")).rowCount).toBe(1);
    await second.close();
    // The second open found the server running, so closing it left the first one up.
    expect((await first.pool.query('SELECT 1 AS up')).rows[0].up).toBe(1);
  } finally {
    await first.close();
  }
  const reopened = await openDatabase({ dataDir, port });
  try {
    expect((await reopened.pool.query("SELECT id FROM control.cells WHERE id = 'cell-kept'")).rowCount).toBe(
      1,
    );
  } finally {
    await reopened.close();
  }
}, 120_000);

test('an unreachable DATABASE_URL is one clear error', async () => {
  await expect(openDatabase({ url: 'postgresql://postgres@127.0.0.1:1/x' })).rejects.toThrow(
    new DatabaseUnavailableError('PostgreSQL unreachable at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1'),
  );
});

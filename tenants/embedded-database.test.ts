import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { directoryClosedToOthers, openDatabase } from './embedded-database.ts';
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

test('a port taken by another program is one line naming the port and the fix', async () => {
  const port = await freePort();
  const squatter = createServer((socket) => socket.end()).listen(port, '127.0.0.1');
  await new Promise((resolve) => squatter.once('listening', resolve));
  try {
    const attempt = openDatabase({ dataDir: path.join(dataDir, 'taken'), port });
    await expect(attempt).rejects.toThrow(DatabaseUnavailableError);
    await expect(attempt).rejects.toThrow(
      `port ${port} is in use by a program that is not a PostgreSQL this project can use: set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to a running PostgreSQL`,
    );
  } finally {
    squatter.close();
  }
});

test('a data folder inside a 0700 directory is named, as initdb runs as another user when root', async () => {
  // A folder other users cannot enter, as mktemp -d and root's home are.
  const closed = await mkdtemp(path.join(tmpdir(), 'closed-clone-'));
  await chmod(closed, 0o700);
  await mkdir(path.join(closed, 'clone'));
  expect(await directoryClosedToOthers(path.join(closed, 'clone', '.data', 'postgres'))).toBe(closed);
  expect(await directoryClosedToOthers(path.join(tmpdir(), 'not-made-yet', 'postgres'))).toBeUndefined();
  // The embedded server drops root only when run as root; that is where the clear line must come out.
  if (process.getuid?.() === 0) {
    const port = await freePort();
    await expect(openDatabase({ dataDir: path.join(closed, 'clone', 'pg'), port })).rejects.toThrow(
      `running as root, the embedded PostgreSQL runs as the user 'postgres', who cannot enter ${closed}: run as an ordinary user, move the clone under a directory others can enter (e.g. /srv or /opt), or set DATABASE_URL to a running PostgreSQL`,
    );
  }
  await rm(closed, { recursive: true, force: true });
});

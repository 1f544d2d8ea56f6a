import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { createLogger, logShippingTransport } from './logger.ts';

describe('shipping logs to BetterStack', () => {
  test('without a source token nothing changes: no transport, the logger writes to its descriptor', () => {
    expect(logShippingTransport({}, 'info', 1)).toBeNull();
    expect(logShippingTransport({ BETTERSTACK_SOURCE_TOKEN: '  ' }, 'info', 2)).toBeNull();
    const logger = createLogger({ name: 'x' }, 2, {});
    const stream = (logger as unknown as Record<symbol, object>)[pino.symbols.streamSym];
    expect(stream?.constructor.name).toBe('SonicBoom');
  });

  test('with a token, lines go to the same descriptor and to @logtail/pino at the logger level', () => {
    expect(
      logShippingTransport(
        { BETTERSTACK_SOURCE_TOKEN: 'src', BETTERSTACK_INGESTING_HOST: 's1.eu.betterstackdata.com' },
        'warn',
        2,
      ),
    ).toEqual({
      targets: [
        { target: 'pino/file', level: 'warn', options: { destination: 2 } },
        {
          target: '@logtail/pino',
          level: 'warn',
          options: { sourceToken: 'src', options: { endpoint: 'https://s1.eu.betterstackdata.com' } },
        },
      ],
    });
    expect(logShippingTransport({ BETTERSTACK_SOURCE_TOKEN: 'src' }, 'silent', 1)).toBeNull();
  });

  test('the configured transport delivers a line, with the bearer source token, to the ingesting endpoint', async () => {
    const received: { auth: string | undefined; body: Buffer; encoding: string | undefined }[] = [];
    const ingest = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({
          auth: req.headers.authorization,
          body: Buffer.concat(chunks),
          encoding: req.headers['content-encoding'],
        });
        res.writeHead(202, { connection: 'close' }).end();
      });
    });
    await new Promise<void>((resolve) => ingest.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(ingest.address() as AddressInfo).port}`;
    const options = logShippingTransport(
      { BETTERSTACK_SOURCE_TOKEN: 'src-token', BETTERSTACK_INGESTING_HOST: endpoint },
      'info',
      2,
    )!;
    const transport = pino.transport(options);
    const logger = pino({ base: { service: 'test' } }, transport);
    logger.info({ tenant: 'acme' }, 'shipped line');
    const deadline = Date.now() + 10_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The worker thread is left to the test process's exit, as a service's is to its own.
    (transport as unknown as { unref(): void }).unref();
    await new Promise((resolve) => ingest.close(resolve));
    expect(received[0]?.auth).toBe('Bearer src-token');
    const body = received[0]!.encoding === 'gzip' ? gunzipSync(received[0]!.body) : received[0]!.body;
    expect(body.toString('latin1')).toContain('shipped line');
  });
});

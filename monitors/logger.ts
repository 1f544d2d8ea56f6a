import pino, { type Logger, type LoggerOptions, type TransportMultiOptions } from 'pino';

/** Where a service writes its own log lines: 1 stdout, 2 stderr (CLIs keep stdout for their output). */
export type LogFd = 1 | 2;

/**
 * With BETTERSTACK_SOURCE_TOKEN set, log lines go to the usual descriptor and to BetterStack through
 * `@logtail/pino` (https://betterstack.com/docs/logs/javascript/pino). BETTERSTACK_INGESTING_HOST is the
 * source's ingesting host (a full URL is used as given); unset, the transport's default endpoint is used.
 * Without the token there is no transport: null.
 */
export function logShippingTransport(
  env: NodeJS.ProcessEnv,
  level: string,
  fd: LogFd,
): TransportMultiOptions | null {
  const sourceToken = env.BETTERSTACK_SOURCE_TOKEN?.trim();
  if (!sourceToken || level === 'silent') return null;
  const host = env.BETTERSTACK_INGESTING_HOST?.trim();
  const endpoint = !host ? undefined : /^https?:\/\//.test(host) ? host : `https://${host}`;
  return {
    targets: [
      { target: 'pino/file', level, options: { destination: fd } },
      {
        target: '@logtail/pino',
        level,
        options: { sourceToken, options: endpoint === undefined ? {} : { endpoint } },
      },
    ],
  };
}

/** The one place service loggers are made; ships to BetterStack only when a source token is configured. */
export function createLogger(
  options: LoggerOptions & { level?: string },
  fd: LogFd = 1,
  env: NodeJS.ProcessEnv = process.env,
): Logger {
  const transport = logShippingTransport(env, options.level ?? 'info', fd);
  if (transport !== null) return pino(options, pino.transport(transport));
  return fd === 1 ? pino(options) : pino(options, pino.destination(2));
}

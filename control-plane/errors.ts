import type { z } from 'zod';

/** An error whose status and one-line message are safe to show to the client. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    message: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Readonly<Record<string, string | number>> = {},
  ) {
    super(message);
  }
}

/** Parses a request part with zod; a failure is a 400 naming the field and what is wrong with it. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, part: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length > 0 ? `${part}.${issue.path.join('.')}` : part;
  throw new HttpError(400, `invalid ${where}: ${issue.message}`);
}

/** Which backing store a request could not reach. */
export type StoreName = 'redis' | 'postgres';

/** A backing store is unreachable: the client gets 503 with Retry-After and may retry the same request. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(
    readonly store: StoreName,
    override readonly cause: unknown,
  ) {
    super(`${store === 'redis' ? 'the hot store (Redis)' : 'the catalog (PostgreSQL)'} is unavailable`);
  }
}

/** Seconds a client is asked to wait before retrying while a store is down. */
export const STORE_RETRY_AFTER_SECONDS = 2;

// Node socket errors, and SQLSTATE classes 08 (connection exception), 57P (operator intervention:
// shutdown, cannot connect now) and 53300 (too many connections).
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** True when a pg error means the catalog could not be reached, not that the query was wrong. */
export function isCatalogUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || code.startsWith('08') || code.startsWith('57P') || code === '53300') {
      return true;
    }
    return false;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
    error.message,
  );
}

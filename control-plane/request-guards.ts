import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseTenantId } from '../tenants/tenant-id.ts';
import { HttpError, parseInput } from './errors.ts';

/** Task ids of admission routes. */
export const taskIdRule = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -');

const keyPrefixRule = z
  .string()
  .regex(/^apk_[a-z0-9]{10}$/, "must be an API key prefix, 'apk_' and 10 of a-z 0-9");

/** Any other path parameter: the same safe alphabet as task ids, so a new route is guarded from day one. */
const otherParamRule = taskIdRule;

const PARAM_RULES: Record<string, (value: string) => void> = {
  id: (value) => void parseTenantId(value),
  prefix: (value) => void parseInput(keyPrefixRule, value, 'prefix'),
  taskId: (value) => void parseInput(taskIdRule, value, 'taskId'),
};

/**
 * onRequest hook: every path parameter is checked by its name's rule before any handler or store sees it,
 * so NUL bytes, traversal and overlong values end as 400 and never reach PostgreSQL.
 */
export async function validatePathParams(request: FastifyRequest): Promise<void> {
  const params = request.params as Record<string, string> | undefined;
  if (params === undefined) return;
  for (const [name, value] of Object.entries(params)) {
    // The not-found handler's catch-all.
    if (name === '*') continue;
    const rule = PARAM_RULES[name] ?? ((v: string) => void parseInput(otherParamRule, v, name));
    rule(value);
  }
}

/** onRequest hook: JSON bodies are UTF-8 (RFC 8259); another declared charset is a 415, not a misread body. */
export async function requireUtf8(request: FastifyRequest): Promise<void> {
  const type = request.headers['content-type'];
  if (type === undefined) return;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1];
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8' && charset.toLowerCase() !== 'utf8') {
    throw new HttpError(415, `unsupported charset '${charset}': send application/json in UTF-8`);
  }
}

const REASONS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request timed out'],
};

/** Node's parser errors (before Fastify routes a request) answered with the service's `{ error }` shape. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] = REASONS[error.code ?? ''] ?? [400, 'malformed HTTP request'];
  const body = JSON.stringify({ error: message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${message}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

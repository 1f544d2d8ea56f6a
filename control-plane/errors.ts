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

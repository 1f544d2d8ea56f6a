import { z } from 'zod';
import type { AttributeValue, ResourceKind } from './declared.ts';

// The BetterStack Uptime API (JSON:API, Bearer token), as documented at
// https://betterstack.com/docs/uptime/api/getting-started-with-uptime-api/ and its per-endpoint pages:
// list-all-existing-monitors, create-a-new-monitor, list-all-existing-hearbeats, create-a-hearbeat,
// update-an-existing-status-page, delete-an-existing-status-page, and pagination/ (per_page up to 250,
// `pagination.next` null on the last page).

/** Thrown for an answer the tool cannot act on; one line naming the request and what came back. */
export class BetterStackError extends Error {
  override readonly name = 'BetterStackError';
}

export const DEFAULT_API_URL = 'https://uptime.betterstack.com';

const TOP_LEVEL: Record<Exclude<ResourceKind, 'status_page_resource'>, string> = {
  monitor: '/api/v2/monitors',
  heartbeat: '/api/v2/heartbeats',
  status_page: '/api/v2/status-pages',
};

/** Collection path of a kind; status page resources live under their page (list-existing-resources-of-a-status-page). */
export function collectionPath(kind: ResourceKind, pageId?: string): string {
  if (kind !== 'status_page_resource') return TOP_LEVEL[kind];
  if (pageId === undefined) throw new BetterStackError('a status page resource needs its page id');
  return `${TOP_LEVEL.status_page}/${encodeURIComponent(pageId)}/resources`;
}

const resourceSchema = z.object({
  id: z.string().min(1),
  type: z.string(),
  attributes: z.record(z.string(), z.unknown()),
});
export type RemoteResource = z.infer<typeof resourceSchema>;

const listSchema = z.object({
  data: z.array(resourceSchema),
  pagination: z.object({ next: z.string().nullable() }).optional(),
});
const oneSchema = z.object({ data: resourceSchema });

export interface BetterStackClientOptions {
  readonly token: string;
  /** @default https://uptime.betterstack.com */
  readonly baseUrl?: string;
  /** Retries of one request answered 429 before giving up. @default 5 */
  readonly maxRetries?: number;
  /** Longest Retry-After honoured, in seconds; a longer one fails instead of hanging a deploy. @default 120 */
  readonly maxRetryAfterSeconds?: number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

const PER_PAGE = 250;
// BetterStack publishes no rate limits; Retry-After (RFC 9110 10.2.3) is seconds or an HTTP date.
const FALLBACK_RETRY_SECONDS = 1;

function retryAfterSeconds(header: string | null, now: number): number {
  if (header === null) return FALLBACK_RETRY_SECONDS;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? FALLBACK_RETRY_SECONDS : Math.max(0, Math.ceil((at - now) / 1000));
}

/** A small BetterStack Uptime API client: list (all pages), create, update, delete; 429 waits out Retry-After. */
export class BetterStackClient {
  private readonly base: URL;
  private readonly maxRetries: number;
  private readonly maxRetryAfter: number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Requests answered 429 and retried, for the run summary. */
  throttled = 0;

  constructor(private readonly options: BetterStackClientOptions) {
    this.base = new URL(options.baseUrl ?? DEFAULT_API_URL);
    this.maxRetries = options.maxRetries ?? 5;
    this.maxRetryAfter = options.maxRetryAfterSeconds ?? 120;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async list(kind: ResourceKind, pageId?: string): Promise<RemoteResource[]> {
    const all: RemoteResource[] = [];
    const collection = collectionPath(kind, pageId);
    let next: URL | null = new URL(`${collection}?per_page=${PER_PAGE}`, this.base);
    while (next !== null) {
      const page = listSchema.safeParse(await this.request('GET', next));
      if (!page.success) throw new BetterStackError(`GET ${next.pathname}: unexpected list body`);
      all.push(...page.data.data);
      const link = page.data.pagination?.next ?? null;
      next = link === null ? null : new URL(link, this.base);
      // The token goes to BetterStack only, never to a host a page link names.
      if (next !== null && next.origin !== this.base.origin) {
        throw new BetterStackError(`GET ${collection}: next page is on another origin (${next.origin})`);
      }
    }
    return all;
  }

  async create(
    kind: ResourceKind,
    attributes: Record<string, AttributeValue>,
    pageId?: string,
  ): Promise<RemoteResource> {
    return this.one('POST', new URL(collectionPath(kind, pageId), this.base), attributes);
  }

  async update(
    kind: ResourceKind,
    id: string,
    attributes: Record<string, AttributeValue>,
    pageId?: string,
  ): Promise<RemoteResource> {
    return this.one('PATCH', this.itemUrl(kind, id, pageId), attributes);
  }

  async remove(kind: ResourceKind, id: string, pageId?: string): Promise<void> {
    await this.request('DELETE', this.itemUrl(kind, id, pageId));
  }

  private itemUrl(kind: ResourceKind, id: string, pageId?: string): URL {
    return new URL(`${collectionPath(kind, pageId)}/${encodeURIComponent(id)}`, this.base);
  }

  private async one(method: string, url: URL, body: Record<string, AttributeValue>): Promise<RemoteResource> {
    const parsed = oneSchema.safeParse(await this.request(method, url, body));
    if (!parsed.success) throw new BetterStackError(`${method} ${url.pathname}: unexpected body`);
    return parsed.data.data;
  }

  private async request(method: string, url: URL, body?: unknown): Promise<unknown> {
    for (let attempt = 0; ; attempt += 1) {
      const response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      if (response.status === 429 && attempt < this.maxRetries) {
        const wait = retryAfterSeconds(response.headers.get('retry-after'), Date.now());
        if (wait > this.maxRetryAfter) {
          throw new BetterStackError(
            `${method} ${url.pathname}: rate limited, Retry-After ${wait} s is longer than ${this.maxRetryAfter} s`,
          );
        }
        await response.body?.cancel();
        this.throttled += 1;
        await this.sleep(wait * 1000);
        continue;
      }
      if (response.status === 204) return null;
      const text = await response.text();
      if (!response.ok) {
        const why =
          response.status === 401
            ? 'the API token was refused (check BETTERSTACK_API_TOKEN or its secret)'
            : text.slice(0, 300);
        throw new BetterStackError(`${method} ${url.pathname} answered ${response.status}: ${why}`);
      }
      try {
        return JSON.parse(text);
      } catch {
        throw new BetterStackError(
          `${method} ${url.pathname} answered ${response.status} with a body that is not JSON`,
        );
      }
    }
  }
}

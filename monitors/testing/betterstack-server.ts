import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A local stand-in for the BetterStack Uptime API, written from its public documentation:
// - https://betterstack.com/docs/uptime/api/getting-started-with-uptime-api/ (JSON:API, Authorization: Bearer)
// - https://betterstack.com/docs/uptime/api/pagination/ (page, per_page default 50 max 250, pagination.first/last/prev/next)
// - https://betterstack.com/docs/uptime/api/list-all-existing-monitors, .../create-a-new-monitor (POST 201,
//   PATCH /api/v2/monitors/:id, DELETE 204)
// - https://betterstack.com/docs/uptime/api/list-all-existing-hearbeats, .../create-a-hearbeat (422 with
//   {"errors": {"name": ["Can't be blank."]}}, `url` is the ping URL, `paused_at`)
// - https://betterstack.com/docs/uptime/api/update-an-existing-status-page/,
//   .../delete-an-existing-status-page/ (subdomain unique across BetterStack)
// - https://betterstack.com/docs/uptime/api/list-existing-resources-of-a-status-page,
//   .../create-a-new-status-page-resource, .../update-an-existing-status-page-resource (resource_id and
//   resource_type sent together; resource_id comes back as an integer)
// BetterStack publishes no rate limits; a 429 here carries Retry-After in seconds (RFC 9110 10.2.3).

type Kind = 'monitors' | 'heartbeats' | 'status-pages';
const TYPES: Record<Kind, string> = {
  monitors: 'monitor',
  heartbeats: 'heartbeat',
  'status-pages': 'status_page',
};
const REQUIRED: Record<Kind, string[]> = {
  monitors: ['url', 'monitor_type'],
  heartbeats: ['name'],
  'status-pages': ['company_name', 'subdomain'],
};

type Attributes = Record<string, unknown>;

export interface ContractRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface BetterStackContractServer {
  readonly url: string;
  /** Every request answered, in order. */
  readonly requests: ContractRequest[];
  /** Adds an object directly, as if made by hand in the BetterStack UI; returns its id. */
  seed(kind: Kind, attributes: Attributes): string;
  /** The objects of one kind, by id. */
  objects(kind: Kind): Map<string, Attributes>;
  /** The resources of one status page, by id. */
  resourcesOf(pageId: string): Map<string, Attributes>;
  /** The next `count` requests are answered 429 with `Retry-After: seconds`. */
  throttle(count: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

function defaults(kind: Kind, origin: string): Attributes {
  const now = new Date().toISOString();
  const common = {
    created_at: now,
    updated_at: now,
    paused_at: null,
    email: true,
    sms: false,
    call: false,
    push: false,
  };
  if (kind === 'monitors') {
    return {
      ...common,
      status: 'pending',
      check_frequency: 180,
      verify_ssl: true,
      http_method: 'get',
      regions: ['us', 'eu', 'as', 'au'],
    };
  }
  if (kind === 'heartbeats') {
    return {
      ...common,
      status: 'pending',
      period: 86_400,
      grace: 0,
      url: `${origin}/api/v1/heartbeat/${randomBytes(12).toString('hex')}`,
    };
  }
  return {
    created_at: now,
    updated_at: now,
    timezone: 'UTC',
    subscribable: false,
    aggregate_state: 'operational',
  };
}

/** `paused` is written, `paused_at` is what the API reports. */
function write(target: Attributes, body: Attributes): void {
  for (const [key, value] of Object.entries(body)) {
    if (key === 'paused')
      target.paused_at = value === true ? (target.paused_at ?? new Date().toISOString()) : null;
    else target[key] = value;
  }
  target.updated_at = new Date().toISOString();
}

export async function startBetterStackServer(options: {
  token: string;
  maxPerPage?: number;
}): Promise<BetterStackContractServer> {
  const store: Record<Kind, Map<string, Attributes>> = {
    monitors: new Map(),
    heartbeats: new Map(),
    'status-pages': new Map(),
  };
  /** Status page id -> its resources by id. */
  const pageResources = new Map<string, Map<string, Attributes>>();
  const requests: ContractRequest[] = [];
  const maxPerPage = options.maxPerPage ?? 250;
  let nextId = 1000;
  let throttled = 0;
  let retryAfter = 1;
  let origin = '';

  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', status });
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const resource = (kind: Kind, id: string, attributes: Attributes) => ({
    id,
    type: TYPES[kind],
    attributes,
  });
  const listPage = (url: URL, items: Map<string, Attributes>, type: string) => {
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
    const perPage = Math.min(maxPerPage, Math.max(1, Number(url.searchParams.get('per_page') ?? 50) || 50));
    const all = [...items.entries()];
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const link = (p: number) => `${origin}${url.pathname}?page=${p}&per_page=${perPage}`;
    return {
      data: all
        .slice((page - 1) * perPage, page * perPage)
        .map(([key, attributes]) => ({ id: key, type, attributes })),
      pagination: {
        first: link(1),
        last: link(last),
        prev: page > 1 ? link(page - 1) : null,
        next: page < last ? link(page + 1) : null,
      },
    };
  };
  const readBody = async (req: IncomingMessage): Promise<Attributes | null> => {
    let text = '';
    for await (const chunk of req) text += chunk;
    try {
      return JSON.parse(text) as Attributes;
    } catch {
      return null;
    }
  };
  const RESOURCE_TARGETS: Record<string, Kind> = { Monitor: 'monitors', Heartbeat: 'heartbeats' };

  /** /api/v2/status-pages/:page/resources[/:id] */
  const handleResources = async (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    pageId: string,
    id: string | undefined,
  ) => {
    if (!store['status-pages'].has(pageId)) return send(req, res, 404, { errors: 'Status page not found' });
    const items = pageResources.get(pageId) ?? new Map<string, Attributes>();
    pageResources.set(pageId, items);
    if (id === undefined && req.method === 'GET')
      return send(req, res, 200, listPage(url, items, 'status_page_resource'));
    const body = req.method === 'POST' || req.method === 'PATCH' ? await readBody(req) : {};
    if (body === null) return send(req, res, 400, { errors: 'Invalid JSON' });
    const checkTarget = (attributes: Attributes) => {
      const kind = RESOURCE_TARGETS[String(attributes.resource_type)];
      if (kind === undefined) return { resource_type: ['is not included in the list'] };
      if (!store[kind].has(String(attributes.resource_id))) return { resource_id: ['does not exist'] };
      return null;
    };
    if (id === undefined && req.method === 'POST') {
      const problem = checkTarget(body);
      if (problem !== null) return send(req, res, 422, { errors: problem });
      const key = String(nextId++);
      const created: Attributes = {
        widget_type: 'history',
        explanation: '',
        position: items.size,
        ...body,
        resource_id: Number(body.resource_id),
      };
      items.set(key, created);
      return send(req, res, 201, { data: { id: key, type: 'status_page_resource', attributes: created } });
    }
    const existing = id === undefined ? undefined : items.get(id);
    if (id === undefined || existing === undefined)
      return send(req, res, 404, { errors: 'Resource not found' });
    if (req.method === 'PATCH') {
      if ('resource_id' in body !== 'resource_type' in body) {
        return send(req, res, 422, { errors: { resource_id: ['must be sent with resource_type'] } });
      }
      if ('resource_id' in body) {
        const problem = checkTarget(body);
        if (problem !== null) return send(req, res, 422, { errors: problem });
      }
      Object.assign(existing, body, 'resource_id' in body ? { resource_id: Number(body.resource_id) } : {});
      return send(req, res, 200, { data: { id, type: 'status_page_resource', attributes: existing } });
    }
    if (req.method === 'DELETE') {
      items.delete(id);
      return send(req, res, 204);
    }
    return send(req, res, 405, { errors: 'Method not allowed' });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (throttled > 0) {
      throttled -= 1;
      return send(req, res, 429, { errors: 'Too many requests' }, { 'retry-after': String(retryAfter) });
    }
    if (req.headers.authorization !== `Bearer ${options.token}`)
      return send(req, res, 401, { errors: 'Invalid Team API Token' });
    const url = new URL(req.url ?? '/', origin);
    const nested = /^\/api\/v2\/status-pages\/([^/]+)\/resources(?:\/([^/]+))?$/.exec(url.pathname);
    if (nested !== null) return handleResources(req, res, url, nested[1]!, nested[2]);
    const match = /^\/api\/v2\/(monitors|heartbeats|status-pages)(?:\/([^/]+))?$/.exec(url.pathname);
    if (match === null) return send(req, res, 404, { errors: 'Resource type not found' });
    const kind = match[1] as Kind;
    const id = match[2];
    const items = store[kind];
    const body = req.method === 'POST' || req.method === 'PATCH' ? await readBody(req) : {};
    if (body === null) return send(req, res, 400, { errors: 'Invalid JSON' });
    if (id === undefined && req.method === 'GET')
      return send(req, res, 200, listPage(url, items, TYPES[kind]));
    if (id === undefined && req.method === 'POST') {
      const missing = REQUIRED[kind].filter((field) => body[field] === undefined || body[field] === '');
      if (missing.length > 0) {
        return send(req, res, 422, {
          errors: Object.fromEntries(missing.map((field) => [field, ["Can't be blank."]])),
        });
      }
      if (kind === 'status-pages' && [...items.values()].some((p) => p.subdomain === body.subdomain)) {
        return send(req, res, 422, { errors: { subdomain: ['has already been taken'] } });
      }
      const created = defaults(kind, origin);
      write(created, body);
      const key = String(nextId++);
      items.set(key, created);
      return send(req, res, 201, { data: resource(kind, key, created) });
    }
    const existing = id === undefined ? undefined : items.get(id);
    if (id === undefined || existing === undefined)
      return send(req, res, 404, { errors: 'Resource not found' });
    if (req.method === 'GET') return send(req, res, 200, { data: resource(kind, id, existing) });
    if (req.method === 'PATCH') {
      write(existing, body);
      return send(req, res, 200, { data: resource(kind, id, existing) });
    }
    if (req.method === 'DELETE') {
      items.delete(id);
      if (kind === 'status-pages') pageResources.delete(id);
      return send(req, res, 204);
    }
    return send(req, res, 405, { errors: 'Method not allowed' });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(req, res, 500, { errors: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    requests,
    seed(kind, attributes) {
      const created = defaults(kind, origin);
      write(created, attributes);
      const key = String(nextId++);
      store[kind].set(key, created);
      return key;
    },
    objects: (kind) => store[kind],
    resourcesOf: (pageId) => pageResources.get(pageId) ?? new Map(),
    throttle(count, seconds) {
      throttled = count;
      retryAfter = seconds;
    },
    close: () =>
      new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local contract server for the Stripe endpoints billing/ uses, written from the public API reference:
 * - errors: docs.stripe.com/api/errors (`{ error: { type, code, message } }`, 429 and 5xx statuses)
 * - customers: docs.stripe.com/api/customers/create, /retrieve
 * - meters: docs.stripe.com/api/billing/meter/create, /list (event_time_window, customer_mapping, value_settings)
 * - meter events (v2 stream): docs.stripe.com/api/v2/billing-meter-stream (session tokens valid 15 minutes, up to
 *   100 events a request, identifiers unique within a rolling 24 hour period, timestamps within the past 35
 *   days or up to 5 minutes ahead; validation is asynchronous, so a bad event is dropped and reported, not
 *   refused) and docs.stripe.com/api/v2/billing/meter-events/create
 * - pre-aggregated meters: docs.stripe.com/billing/subscriptions/usage-based/recording-usage ("a newer event
 *   sent within the same hourly window overwrites the previous one")
 * - meter event summaries: docs.stripe.com/api/billing/meter-event-summary/list (minute-aligned start/end,
 *   optional hourly grouping, limit 1..100)
 * - products, prices (lookup_key, transfer_lookup_key, tiers), subscriptions (items, cancel_at_period_end)
 *   and invoices (list by customer and created range): docs.stripe.com/api/prices, /subscriptions, /invoices
 * Idempotency-Key on a v1 POST replays the first answer (docs.stripe.com/api/idempotent_requests).
 */

const IDENTIFIER_WINDOW_MS = 24 * 3600_000;
const PAST_LIMIT_MS = 35 * 24 * 3600_000;
const FUTURE_LIMIT_MS = 5 * 60_000;
const SESSION_MS = 15 * 60_000;
const MAX_STREAM_EVENTS = 100;

type Json = Record<string, unknown>;

/** Stripe's error object; `status` is the HTTP status it comes with. */
export interface StripeFault {
  readonly status: number;
  readonly type: string;
  readonly code?: string;
  readonly message: string;
}

/** A planned failure: the next `times` requests whose method and path match get this answer. */
export interface Injection {
  readonly match: RegExp;
  /** Only requests whose body or query names this customer (a stream batch of that tenant). @default - any */
  readonly customer?: string;
  readonly fault: StripeFault;
  times: number;
}

interface StoredEvent {
  readonly identifier: string;
  readonly eventName: string;
  readonly customer: string;
  readonly value: number;
  /** Event time, ms. */
  readonly timestamp: number;
  readonly receivedAt: number;
  readonly seq: number;
}

interface Meter extends Json {
  id: string;
  event_name: string;
  event_time_window: 'hour' | 'day' | null;
  status: string;
}

export interface StripeServerOptions {
  /** The API key requests must carry. @default 'sk_test_local' */
  readonly apiKey?: string;
  /** The server's clock (identifier window, 35-day rule, session expiry). @default Date.now */
  readonly now?: () => number;
}

class Fault extends Error {
  constructor(readonly fault: StripeFault) {
    super(fault.message);
  }
}

const invalid = (message: string, code = 'parameter_invalid'): Fault =>
  new Fault({ status: 400, type: 'invalid_request_error', code, message });
const missing = (what: string, id: string): Fault =>
  new Fault({
    status: 404,
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${what}: '${id}'`,
  });

/** Parses Stripe's form encoding (`a[b][0][c]=v`) into nested objects; numeric keys make arrays. */
export function parseForm(body: string): Json {
  const root: Json = {};
  for (const pair of body.split('&')) {
    if (!pair) continue;
    const [rawKey, rawValue = ''] = pair.split('=');
    const key = decodeURIComponent(rawKey!.replace(/\+/g, ' '));
    const value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    const parts = key.split(/\[|\]\[|\]/).filter((p) => p !== '');
    let node: Json = root;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) node[part] = value;
      else {
        node[part] ??= /^\d+$/.test(parts[i + 1]!) ? [] : {};
        node = node[part] as Json;
      }
    });
  }
  return root;
}

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString('hex')}`;
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export class StripeContractServer {
  readonly customers = new Map<string, Json>();
  readonly meters = new Map<string, Meter>();
  readonly products = new Map<string, Json>();
  readonly prices = new Map<string, Json>();
  readonly subscriptions = new Map<string, Json>();
  readonly invoices: Json[] = [];
  /** Accepted meter events, in arrival order (duplicates and invalid events are not kept). */
  readonly events: StoredEvent[] = [];
  /** Events dropped by asynchronous validation, as Stripe reports them (v1.billing.meter.error_report_triggered). */
  readonly errorReports: { identifier: string; code: string; message: string }[] = [];
  readonly stats = {
    requests: 0,
    streamRequests: 0,
    duplicates: 0,
    faults: 0,
    byRoute: new Map<string, number>(),
  };
  private readonly injections: Injection[] = [];
  private readonly sessions = new Map<string, number>();
  private readonly identifiers = new Map<string, number>();
  private readonly idempotent = new Map<string, { status: number; body: Json }>();
  /** Called after a stream request's events are stored and before it is answered (tests kill the client here). */
  onStreamAccepted: ((events: number) => void) | null = null;
  private server: Server | null = null;
  private seq = 0;
  readonly apiKey: string;
  private readonly clock: () => number;

  constructor(options: StripeServerOptions = {}) {
    this.apiKey = options.apiKey ?? 'sk_test_local';
    this.clock = options.now ?? Date.now;
  }

  /** Listens on a free loopback port; returns the base URL. */
  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        this.send(res, 500, { error: { type: 'api_error', message: String(error) } });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('the Stripe contract server is not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Forgets every meter event, identifier, report and count; meters, products and prices stay. */
  resetEvents(): void {
    this.events.length = 0;
    this.errorReports.length = 0;
    this.identifiers.clear();
    this.injections.length = 0;
    Object.assign(this.stats, { requests: 0, streamRequests: 0, duplicates: 0, faults: 0 });
    this.stats.byRoute.clear();
  }

  /** Makes the next `times` matching requests fail with `fault`. */
  inject(injection: Omit<Injection, 'times'> & { times?: number }): void {
    this.injections.push({ ...injection, times: injection.times ?? 1 });
  }

  /** An invoice as Stripe would hold it after a period closes (contract tests seed them). */
  addInvoice(customer: string, createdSec: number, totalCents: number, status = 'paid'): void {
    this.invoices.push({
      id: newId('in'),
      object: 'invoice',
      customer,
      created: createdSec,
      total: totalCents,
      currency: 'usd',
      status,
    });
  }

  /**
   * What Stripe bills for one customer, meter event name and time range: for a pre-aggregated meter the
   * newest event of each window counts; for a raw meter every event does.
   */
  aggregate(customer: string, eventName: string, startMs: number, endMs: number): number {
    return this.effectiveEvents(customer, eventName, startMs, endMs).reduce((sum, e) => sum + e.value, 0);
  }

  /** The events that count, after a pre-aggregated meter's overwrites. */
  effectiveEvents(customer: string, eventName: string, startMs: number, endMs: number): StoredEvent[] {
    const meter = [...this.meters.values()].find((m) => m.event_name === eventName);
    const inRange = this.events.filter(
      (e) =>
        e.customer === customer && e.eventName === eventName && e.timestamp >= startMs && e.timestamp < endMs,
    );
    const window = meter?.event_time_window;
    if (!window) return inRange;
    const size = window === 'hour' ? 3600_000 : 86_400_000;
    const newest = new Map<number, StoredEvent>();
    for (const e of inRange) {
      const slot = Math.floor(e.timestamp / size);
      const held = newest.get(slot);
      if (!held || e.timestamp > held.timestamp || (e.timestamp === held.timestamp && e.seq > held.seq))
        newest.set(slot, e);
    }
    return [...newest.values()];
  }

  private send(res: ServerResponse, status: number, body: Json): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': newId('req') });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const route = `${method} ${url.pathname}`;
    this.stats.requests += 1;
    const routeKey = route.replace(/\/(cus|mtr|price|sub|prod)_[^/]+/g, '/:id');
    this.stats.byRoute.set(routeKey, (this.stats.byRoute.get(routeKey) ?? 0) + 1);
    try {
      const injected = this.injections.find(
        (i) =>
          i.times > 0 &&
          i.match.test(route) &&
          (i.customer === undefined || raw.includes(i.customer) || url.search.includes(i.customer)),
      );
      if (injected) {
        injected.times -= 1;
        this.stats.faults += 1;
        throw new Fault(injected.fault);
      }
      const v2 = url.pathname.startsWith('/v2/');
      const body: Json = raw === '' ? {} : v2 ? (JSON.parse(raw) as Json) : parseForm(raw);
      const query = parseForm(url.search.slice(1));
      this.authenticate(req, url.pathname);
      const key = req.headers['idempotency-key'];
      const replayKey =
        !v2 && method === 'POST' && typeof key === 'string' ? `${url.pathname}\u0000${key}` : null;
      const replay = replayKey ? this.idempotent.get(replayKey) : undefined;
      if (replay) {
        this.send(res, replay.status, replay.body);
        return;
      }
      const answer = this.route(method, url.pathname, body, query);
      if (replayKey) this.idempotent.set(replayKey, { status: 200, body: answer });
      this.send(res, 200, answer);
    } catch (error) {
      if (!(error instanceof Fault)) throw error;
      const { status, ...fault } = error.fault;
      this.send(res, status, { error: fault });
    }
  }

  private authenticate(req: IncomingMessage, pathname: string): void {
    const header = req.headers.authorization ?? '';
    const token = header.replace(/^Bearer /, '');
    if (pathname === '/v2/billing/meter_event_stream') {
      const expires = this.sessions.get(token);
      if (expires === undefined)
        throw new Fault({
          status: 401,
          type: 'authentication_error',
          message: 'Invalid meter event session token',
        });
      if (expires <= this.clock())
        throw new Fault({
          status: 401,
          type: 'temporary_session_expired',
          code: 'billing_meter_event_session_expired',
          message: 'The meter event session has expired; create a new one',
        });
      return;
    }
    if (token !== this.apiKey)
      throw new Fault({ status: 401, type: 'authentication_error', message: 'Invalid API Key provided' });
  }

  private route(method: string, path: string, body: Json, query: Json): Json {
    const parts = path.split('/').filter(Boolean);
    const [version, a, b, c] = parts;
    if (version === 'v2' && a === 'billing' && method === 'POST') {
      if (b === 'meter_event_session') return this.createSession();
      if (b === 'meter_event_stream') return this.stream(body);
    }
    if (version !== 'v1') throw missing('route', path);
    if (a === 'customers') {
      if (method === 'POST' && !b) return this.createCustomer(body);
      if (method === 'GET' && b) return this.get(this.customers, 'customer', b);
    }
    if (a === 'billing' && b === 'meters') {
      if (method === 'POST' && !c) return this.createMeter(body);
      if (method === 'GET' && !c)
        return this.list(
          [...this.meters.values()].filter((m) => !query.status || m.status === query.status),
          query,
        );
      if (method === 'GET' && c && parts[4] === 'event_summaries') return this.summaries(c, query);
    }
    if (a === 'products') {
      if (method === 'POST' && !b) return this.createProduct(body);
      if (method === 'GET' && b) return this.get(this.products, 'product', b);
    }
    if (a === 'prices') {
      if (method === 'POST' && !b) return this.createPrice(body);
      if (method === 'POST' && b) return this.updatePrice(b, body);
      if (method === 'GET' && !b) return this.listPrices(query);
    }
    if (a === 'subscriptions') {
      if (method === 'POST' && !b) return this.createSubscription(body);
      if (method === 'POST' && b) return this.updateSubscription(b, body);
      if (method === 'GET' && b) return this.get(this.subscriptions, 'subscription', b);
    }
    if (a === 'invoices' && method === 'GET' && !b) return this.listInvoices(query);
    throw missing('route', `${method} ${path}`);
  }

  private get(map: Map<string, Json>, what: string, id: string): Json {
    const found = map.get(id);
    if (!found) throw missing(what, id);
    return found;
  }

  private list(items: Json[], query: Json, url = ''): Json {
    const limit = query.limit === undefined ? 10 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw invalid(`Invalid limit: must be between 1 and 100`);
    const after = str(query.starting_after);
    const start = after ? items.findIndex((i) => i.id === after) + 1 : 0;
    const page = items.slice(start, start + limit);
    return { object: 'list', url, data: page, has_more: start + limit < items.length };
  }

  private createCustomer(body: Json): Json {
    const customer = {
      id: newId('cus'),
      object: 'customer',
      name: body.name ?? null,
      email: body.email ?? null,
      metadata: body.metadata ?? {},
      created: Math.floor(this.clock() / 1000),
    };
    this.customers.set(customer.id, customer);
    return customer;
  }

  private createMeter(body: Json): Json {
    const eventName = str(body.event_name);
    const displayName = str(body.display_name);
    const formula = str((body.default_aggregation as Json | undefined)?.formula);
    if (!eventName) throw invalid('Missing required param: event_name.', 'parameter_missing');
    if (!displayName) throw invalid('Missing required param: display_name.', 'parameter_missing');
    if (!formula || !['sum', 'count', 'last'].includes(formula))
      throw invalid('Invalid default_aggregation[formula]');
    if ([...this.meters.values()].some((m) => m.event_name === eventName && m.status === 'active'))
      throw invalid(`A meter with event_name '${eventName}' already exists.`, 'resource_already_exists');
    const window = str(body.event_time_window);
    if (window !== undefined && window !== 'hour' && window !== 'day')
      throw invalid('Invalid event_time_window');
    const meter: Meter = {
      id: newId('mtr'),
      object: 'billing.meter',
      display_name: displayName,
      event_name: eventName,
      event_time_window: (window ?? null) as Meter['event_time_window'],
      default_aggregation: { formula },
      customer_mapping: body.customer_mapping ?? { type: 'by_id', event_payload_key: 'stripe_customer_id' },
      value_settings: body.value_settings ?? { event_payload_key: 'value' },
      status: 'active',
      created: Math.floor(this.clock() / 1000),
    };
    this.meters.set(meter.id, meter);
    return meter;
  }

  private createProduct(body: Json): Json {
    const id = str(body.id) ?? newId('prod');
    if (this.products.has(id)) throw invalid(`Product already exists.`, 'resource_already_exists');
    const product = { id, object: 'product', name: body.name, metadata: body.metadata ?? {}, active: true };
    this.products.set(id, product);
    return product;
  }

  private createPrice(body: Json): Json {
    const product = str(body.product);
    if (!product || !this.products.has(product)) throw missing('product', product ?? '');
    const recurring = (body.recurring ?? null) as Json | null;
    if (recurring?.usage_type === 'metered') {
      const meter = str(recurring.meter);
      if (!meter || !this.meters.has(meter)) throw missing('billing meter', meter ?? '');
    }
    const lookupKey = str(body.lookup_key) ?? null;
    if (lookupKey) {
      const holder = [...this.prices.values()].find((p) => p.lookup_key === lookupKey);
      if (holder && body.transfer_lookup_key !== 'true')
        throw invalid(`A price (${String(holder.id)}) already uses that lookup key.`, 'lookup_key_in_use');
      if (holder) holder.lookup_key = null;
    }
    const price = {
      id: newId('price'),
      object: 'price',
      active: true,
      currency: body.currency,
      product,
      lookup_key: lookupKey,
      nickname: body.nickname ?? null,
      metadata: body.metadata ?? {},
      recurring: recurring && {
        interval: recurring.interval,
        usage_type: recurring.usage_type ?? 'licensed',
        meter: recurring.meter ?? null,
      },
      billing_scheme: body.billing_scheme ?? 'per_unit',
      tiers_mode: body.tiers_mode ?? null,
      tiers: Array.isArray(body.tiers)
        ? (body.tiers as Json[]).map((t) => ({
            up_to: t.up_to === 'inf' ? null : Number(t.up_to),
            unit_amount_decimal: t.unit_amount_decimal ?? null,
            flat_amount: null,
          }))
        : null,
      unit_amount: body.unit_amount === undefined ? null : Number(body.unit_amount),
      unit_amount_decimal:
        body.unit_amount_decimal ?? (body.unit_amount === undefined ? null : String(body.unit_amount)),
    };
    this.prices.set(price.id, price);
    return price;
  }

  private updatePrice(id: string, body: Json): Json {
    const price = this.get(this.prices, 'price', id);
    if (body.active !== undefined) price.active = body.active === 'true';
    return price;
  }

  private listPrices(query: Json): Json {
    const keys = Array.isArray(query.lookup_keys) ? (query.lookup_keys as string[]) : [];
    const items = [...this.prices.values()].filter(
      (p) =>
        (keys.length === 0 || keys.includes(String(p.lookup_key))) &&
        (query.active === undefined || String(p.active) === query.active),
    );
    return this.list(items, query, '/v1/prices');
  }

  private subscriptionItems(items: Json[]): Json[] {
    return items.map((i) => {
      const price = this.get(this.prices, 'price', String(i.price));
      return { id: newId('si'), object: 'subscription_item', price };
    });
  }

  private createSubscription(body: Json): Json {
    const customer = str(body.customer);
    if (!customer || !this.customers.has(customer)) throw missing('customer', customer ?? '');
    const now = Math.floor(this.clock() / 1000);
    const subscription = {
      id: newId('sub'),
      object: 'subscription',
      customer,
      status: 'active',
      cancel_at_period_end: false,
      current_period_end: now + 30 * 86400,
      metadata: body.metadata ?? {},
      items: { object: 'list', data: this.subscriptionItems((body.items as Json[] | undefined) ?? []) },
    };
    this.subscriptions.set(subscription.id, subscription);
    return subscription;
  }

  private updateSubscription(id: string, body: Json): Json {
    const subscription = this.get(this.subscriptions, 'subscription', id);
    if (subscription.status === 'canceled')
      throw invalid('A canceled subscription can only update its cancellation_details.');
    if (body.cancel_at_period_end !== undefined)
      subscription.cancel_at_period_end = body.cancel_at_period_end === 'true';
    const items = subscription.items as { data: Json[] };
    for (const change of (body.items as Json[] | undefined) ?? []) {
      if (change.deleted === 'true') items.data = items.data.filter((i) => i.id !== change.id);
      else items.data.push(...this.subscriptionItems([change]));
    }
    return subscription;
  }

  private listInvoices(query: Json): Json {
    const created = (query.created ?? {}) as Json;
    const gte = created.gte === undefined ? -Infinity : Number(created.gte);
    const lt = created.lt === undefined ? Infinity : Number(created.lt);
    const items = this.invoices.filter(
      (i) =>
        (query.customer === undefined || i.customer === query.customer) &&
        Number(i.created) >= gte &&
        Number(i.created) < lt,
    );
    return this.list(items, query, '/v1/invoices');
  }

  private createSession(): Json {
    const token = `mes_${randomBytes(12).toString('hex')}`;
    const now = this.clock();
    this.sessions.set(token, now + SESSION_MS);
    return {
      id: newId('mesess'),
      object: 'v2.billing.meter_event_session',
      authentication_token: token,
      created: new Date(now).toISOString(),
      expires_at: new Date(now + SESSION_MS).toISOString(),
      livemode: false,
    };
  }

  private stream(body: Json): Json {
    const events = body.events;
    if (!Array.isArray(events) || events.length === 0)
      throw invalid('events must be a non-empty list', 'parameter_missing');
    if (events.length > MAX_STREAM_EVENTS)
      throw invalid(`events supports up to ${MAX_STREAM_EVENTS} events per request, got ${events.length}`);
    this.stats.streamRequests += 1;
    const now = this.clock();
    // Identifiers are held in arrival order, so the expired ones are at the front.
    for (const [identifier, at] of this.identifiers) {
      if (at > now - IDENTIFIER_WINDOW_MS) break;
      this.identifiers.delete(identifier);
    }
    for (const event of events as Json[]) this.accept(event, now);
    this.onStreamAccepted?.(events.length);
    return {};
  }

  /** Validates one streamed event the way Stripe does after accepting the request: a bad one is reported. */
  private accept(event: Json, now: number): boolean {
    const identifier = str(event.identifier) ?? newId('auto');
    const report = (code: string, message: string) => {
      this.errorReports.push({ identifier, code, message });
      return false;
    };
    if (identifier.length > 100)
      return report('identifier_too_long', 'identifier has more than 100 characters');
    if (this.identifiers.has(identifier)) {
      this.stats.duplicates += 1;
      return false;
    }
    const eventName = str(event.event_name) ?? '';
    const meter = [...this.meters.values()].find((m) => m.event_name === eventName && m.status === 'active');
    if (!meter) return report('no_meter', `No active meter with event_name '${eventName}'`);
    const payload = (event.payload ?? {}) as Json;
    const customerKey = String((meter.customer_mapping as Json).event_payload_key);
    const valueKey = String((meter.value_settings as Json).event_payload_key);
    const customer = str(payload[customerKey]) ?? '';
    if (!this.customers.has(customer)) return report('customer_not_found', `No such customer: '${customer}'`);
    const text = str(payload[valueKey]) ?? '';
    const value = Number(text);
    if (text === '' || !Number.isFinite(value))
      return report('meter_event_invalid_value', `value '${text}' is not a number`);
    if (text.replace(/[^0-9]/g, '').replace(/^0+/, '').length > 15)
      return report('meter_event_value_too_many_digits', `value '${text}' has more than 15 digits`);
    const timestamp = event.timestamp === undefined ? now : Date.parse(String(event.timestamp));
    if (!Number.isFinite(timestamp) || timestamp < now - PAST_LIMIT_MS || timestamp > now + FUTURE_LIMIT_MS)
      return report(
        'timestamp_out_of_range',
        `timestamp ${String(event.timestamp)} is outside the past 35 days`,
      );
    this.identifiers.set(identifier, now);
    this.seq += 1;
    this.events.push({ identifier, eventName, customer, value, timestamp, receivedAt: now, seq: this.seq });
    return true;
  }

  private summaries(meterId: string, query: Json): Json {
    const meter = this.meters.get(meterId);
    if (!meter) throw missing('billing meter', meterId);
    const customer = str(query.customer);
    if (!customer) throw invalid('Missing required param: customer.', 'parameter_missing');
    const start = Number(query.start_time);
    const end = Number(query.end_time);
    if (!Number.isInteger(start) || !Number.isInteger(end))
      throw invalid('start_time and end_time are required', 'parameter_missing');
    if (start % 60 !== 0 || end % 60 !== 0)
      throw invalid('start_time and end_time must be aligned with minute boundaries');
    if (end <= start) throw invalid('end_time must be after start_time');
    const grouping = str(query.value_grouping_window);
    const step = grouping === 'hour' ? 3600 : grouping === 'day' ? 86400 : end - start;
    const items: Json[] = [];
    for (let from = start; from < end; from += step) {
      const to = Math.min(end, from + step);
      items.push({
        id: `mtrusg_${meterId}_${customer}_${from}`,
        object: 'billing.meter_event_summary',
        aggregated_value: this.aggregate(customer, meter.event_name, from * 1000, to * 1000),
        start_time: from,
        end_time: to,
        meter: meterId,
        livemode: false,
      });
    }
    return this.list(items, query, `/v1/billing/meters/${meterId}/event_summaries`);
  }
}

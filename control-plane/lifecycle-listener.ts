import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { LIFECYCLE_CHANNEL } from '../tenants/lifecycle/transition.ts';
import type { TenantStateCache } from './tenant-cache.ts';

const payloadSchema = z.object({ tenantId: z.string().min(1).max(64) });
const RECONNECT_MS = 1_000;

/**
 * LISTENs on the catalog's lifecycle channel, so a status change made by another process (the cost
 * guard's limit or suspension, the tenant CLI) drops this replica's cached tenant at once instead of when
 * the entry ages out: a running task then stops at its next heartbeat. While the connection is down the
 * cache is cleared on each reconnect, since notifications sent meanwhile are lost; the cache TTL still
 * bounds staleness.
 */
export class LifecycleListener {
  private client: pg.Client | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly tenants: TenantStateCache,
    private readonly logger: Logger,
  ) {}

  /** Connects in the background; start-up never waits on or fails for it. */
  start(): void {
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.pool.options);
    this.client = client;
    client.on('notification', (message) => {
      let payload: unknown;
      try {
        payload = JSON.parse(message.payload ?? 'null');
      } catch {
        payload = null;
      }
      const parsed = payloadSchema.safeParse(payload);
      if (parsed.success) this.tenants.invalidate(parsed.data.tenantId);
      // Anything else on the channel is not ours to act on; the TTL covers it.
    });
    client.on('error', () => this.reconnect(client));
    client.on('end', () => this.reconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(LIFECYCLE_CHANNEL)}`);
      // Changes made before the LISTEN took effect were not heard.
      this.tenants.clear();
    } catch (error) {
      this.logger.warn({ err: error }, 'catalog lifecycle LISTEN failed; retrying');
      this.reconnect(client);
    }
  }

  private reconnect(client: pg.Client): void {
    if (this.closed || this.client !== client) return;
    this.client = null;
    client.end().catch(() => {});
    this.retry = setTimeout(() => void this.connect(), RECONNECT_MS);
    this.retry.unref();
  }
}

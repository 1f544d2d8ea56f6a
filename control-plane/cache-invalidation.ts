import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ApiKeyCache, TenantStateCache } from './tenant-cache.ts';

const messageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('key'), prefix: z.string().min(1).max(64) }),
  z.object({ kind: z.literal('tenant'), id: z.string().min(1).max(64) }),
]);
type Invalidation = z.infer<typeof messageSchema>;

const SUBSCRIBE_WAIT_MS = 2_000;

/**
 * Drops a revoked key or a changed tenant from the caches of every replica: here at once, elsewhere
 * through Redis pub/sub. A replica whose subscription was broken clears its caches on reconnect, since it
 * may have missed messages.
 */
export class CacheInvalidation {
  private subscriber: Redis | null = null;
  private readonly channel: string;

  constructor(
    private readonly redis: Redis | null,
    keyPrefix: string,
    private readonly caches: { readonly keys: ApiKeyCache; readonly tenants: TenantStateCache },
    private readonly logger: Logger,
  ) {
    this.channel = `${keyPrefix}cache-invalidation`;
  }

  /** Subscribes; gives up waiting after a moment when Redis is down (ioredis subscribes on reconnect). */
  async start(): Promise<void> {
    if (this.redis === null) return;
    const subscriber = this.redis.duplicate({ lazyConnect: false, enableOfflineQueue: true });
    this.subscriber = subscriber;
    subscriber.on('error', () => {});
    // Messages sent while the subscription was down are lost: start from empty caches on every (re)connect.
    subscriber.on('ready', () => {
      this.caches.keys.clear();
      this.caches.tenants.clear();
    });
    subscriber.on('message', (_channel: string, text: string) => {
      try {
        this.apply(messageSchema.parse(JSON.parse(text)));
      } catch {
        this.logger.warn({ channel: this.channel }, 'ignored a malformed cache invalidation message');
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const subscribed = subscriber.subscribe(this.channel).then(
      () => true,
      () => false,
    );
    const waited = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), SUBSCRIBE_WAIT_MS);
    });
    if (!(await Promise.race([subscribed, waited]))) {
      this.logger.warn(
        { channel: this.channel },
        'cache invalidation channel not subscribed yet; retrying in the background',
      );
    }
    clearTimeout(timer);
  }

  async keyRevoked(prefix: string): Promise<void> {
    await this.publish({ kind: 'key', prefix });
  }

  async tenantChanged(id: string): Promise<void> {
    await this.publish({ kind: 'tenant', id });
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
  }

  private apply(message: Invalidation): void {
    if (message.kind === 'key') this.caches.keys.invalidatePrefix(message.prefix);
    else this.caches.tenants.invalidate(message.id);
  }

  private async publish(message: Invalidation): Promise<void> {
    this.apply(message);
    if (this.redis === null) return;
    try {
      await this.redis.publish(this.channel, JSON.stringify(message));
    } catch (error) {
      // The change is committed; other replicas drop the entry at the latest when its TTL ends.
      this.logger.warn(
        { err: error, ...message },
        'cache invalidation not published; other replicas wait for their TTL',
      );
    }
  }
}

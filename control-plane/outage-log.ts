import type { Logger } from 'pino';
import type { StoreName } from './errors.ts';

interface Outage {
  readonly since: number;
  refused: number;
  refusedInWindow: number;
}

/**
 * Logs a store outage once when it starts, then one summary line per interval while it lasts and one
 * when it ends, instead of a line (and a stack trace) per refused request.
 */
export class OutageLog {
  private readonly open = new Map<StoreName, Outage>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {
    this.timer = setInterval(() => this.summarize(), intervalMs);
    this.timer.unref();
  }

  /** Counts one request refused because `store` is unreachable. */
  refused(store: StoreName, cause: unknown): void {
    const outage = this.open.get(store);
    if (outage !== undefined) {
      outage.refused++;
      outage.refusedInWindow++;
      return;
    }
    this.open.set(store, { since: Date.now(), refused: 1, refusedInWindow: 1 });
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.logger.error({ store, reason }, `${store} unavailable: answering 503 until it is back`);
  }

  /** Stores with an open outage, for tests and /readyz. */
  get unavailable(): StoreName[] {
    return [...this.open.keys()];
  }

  summarize(): void {
    const now = Date.now();
    for (const [store, outage] of this.open) {
      const seconds = Math.round((now - outage.since) / 1000);
      if (outage.refusedInWindow > 0) {
        this.logger.warn(
          { store, refused: outage.refusedInWindow, seconds },
          `${store} still unavailable: ${outage.refusedInWindow} requests refused in the last ${this.intervalMs} ms`,
        );
        outage.refusedInWindow = 0;
      } else {
        this.open.delete(store);
        this.logger.info(
          { store, refused: outage.refused, seconds },
          `${store} available again after about ${seconds} s; ${outage.refused} requests were refused`,
        );
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

import { appendFileSync } from 'node:fs';

/**
 * Loaded with `--import` into a service under a soak run: every MEMORY_PROBE_MS it appends one JSON line
 * to MEMORY_PROBE_FILE with the process's memory as it is, then again right after a full collection
 * (`--expose-gc`), so live heap can be told apart from heap V8 has merely not returned.
 */
const file = process.env.MEMORY_PROBE_FILE;
const everyMs = Number(process.env.MEMORY_PROBE_MS ?? 0);
const gc = (globalThis as { gc?: () => void }).gc;
if (file !== undefined && everyMs > 0) {
  setInterval(() => {
    const before = process.memoryUsage();
    gc?.();
    const after = process.memoryUsage();
    const line = {
      at: Date.now(),
      rss: before.rss,
      heapTotal: before.heapTotal,
      heapUsed: before.heapUsed,
      rssAfterGc: after.rss,
      heapUsedAfterGc: after.heapUsed,
      externalAfterGc: after.external,
      arrayBuffersAfterGc: after.arrayBuffers,
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, everyMs).unref();
}

// The benchmark's yardstick: a bare Fastify route that authenticates from an in-memory key map,
// consumes one rate-limiter-flexible point on Redis and makes two Redis calls. Run as a child process.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';

const port = Number(process.env.PORT);
const prefix = process.env.REDIS_KEY_PREFIX ?? 'cpbench-ref:';
const keys = new Map((process.env.BENCH_KEYS ?? '').split(',').map((key, i) => [key, `tenant-${i}`]));
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });
const limiter = new RateLimiterRedis({
  storeClient: redis,
  keyPrefix: `${prefix}rl`,
  points: 1_000_000,
  duration: 1,
});

const app = Fastify();
app.post('/v1/usage', async (request, reply) => {
  const tenant = keys.get((request.headers.authorization ?? '').slice(7));
  if (tenant === undefined) return reply.code(401).send({ error: 'unknown key' });
  await limiter.consume(tenant);
  await redis.set(`${prefix}seen:${tenant}`, '1', 'EX', 60);
  await redis.hincrby(`${prefix}usage:${tenant}`, 'apiCalls', 1);
  return reply.code(202).send({ duplicate: false });
});
app.get('/readyz', async () => ({ status: 'ready' }));
await app.listen({ port, host: '127.0.0.1' });
process.on('SIGTERM', () => {
  void app.close().then(() => redis.quit());
});

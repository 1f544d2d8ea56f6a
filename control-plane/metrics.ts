import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** The service's Prometheus metrics, on a registry of its own so several servers can live in one process. */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly rateLimitRejections: Counter<'limiter'>;
  readonly hostTenantRefusals: Counter<'surface'>;
  readonly admissionDecisions: Counter<'decision' | 'reason'>;
  readonly leaseStops: Counter<'reason'>;
  readonly usageReports: Counter<'duplicate'>;
  readonly usageFlushes: Counter<'result'>;
  readonly usageFlushReports: Histogram<never>;
  readonly usageFlushSeconds: Histogram<never>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'control_plane_' });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: 'control_plane_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'control_plane_http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    rateLimitRejections: new Counter({
      name: 'control_plane_rate_limit_rejections_total',
      help: 'Requests refused with 429: limiter is tenant (tier rate) or auth-failures (per IP)',
      labelNames: ['limiter'],
      registers,
    }),
    hostTenantRefusals: new Counter({
      name: 'control_plane_host_tenant_refusals_total',
      help: "Valid API keys refused with 403 on another tenant's host ({tenant}.app.<domain>), by surface (api, portal)",
      labelNames: ['surface'],
      registers,
    }),
    admissionDecisions: new Counter({
      name: 'control_plane_admission_decisions_total',
      help: 'Admission decisions by decision and reason',
      labelNames: ['decision', 'reason'],
      registers,
    }),
    leaseStops: new Counter({
      name: 'control_plane_lease_stops_total',
      help: 'Heartbeats that told a task to stop, by reason',
      labelNames: ['reason'],
      registers,
    }),
    usageReports: new Counter({
      name: 'control_plane_usage_reports_total',
      help: 'Usage reports received; duplicate=true were retries already counted',
      labelNames: ['duplicate'],
      registers,
    }),
    usageFlushes: new Counter({
      name: 'control_plane_usage_batch_flushes_total',
      help: 'Usage batch writes to PostgreSQL by result',
      labelNames: ['result'],
      registers,
    }),
    usageFlushReports: new Histogram({
      name: 'control_plane_usage_batch_reports',
      help: 'Reports written per usage batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 5000],
      registers,
    }),
    usageFlushSeconds: new Histogram({
      name: 'control_plane_usage_batch_flush_seconds',
      help: 'Time to write one usage batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
  };
}

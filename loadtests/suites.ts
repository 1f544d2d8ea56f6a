// Pure suite definitions shared by the k6 scripts and the Node-side gate and tests.
// No k6 or Node imports: k6 modules cannot load in Node, and Node modules cannot load in k6.
import type { Options, Threshold } from 'k6/options';
import { SUMMARY_TREND_STATS } from './lib/report.ts';

export const SUITE_NAMES = ['smoke', 'load', 'peak', 'ratelimit', 'isolation'] as const;
export type SuiteName = (typeof SUITE_NAMES)[number];

/** Custom metrics the scripts declare; thresholds below refer to them by these names. */
export const CUSTOM_METRICS = {
  /** Rate: 1 when a rate-limit round accepted exactly the tier limit and refused the rest. */
  ratelimitExact: 'ratelimit_exact',
  /** Counter: 429s the suite provoked on purpose (the over-limit tenant past its limit). */
  ratelimitExpected429: 'ratelimit_expected_429',
  /** Counter: 429s given to a tenant that stayed under its limit. */
  ratelimitUnexpected429: 'ratelimit_unexpected_429',
  /** Counter: cross-tenant attempts made. */
  isolationAttempts: 'isolation_attempts',
  /** Counter: cross-tenant attempts the API let through. */
  isolationBreaches: 'isolation_breaches',
} as const;

/** Bursts in the ratelimit suite; each uses a fresh tenant so no earlier burst has drawn on its allowance. */
export const RATELIMIT_ROUNDS = 4;

export interface SuiteDefinition {
  /** Suite name, also the script file name under loadtests/scripts/. */
  readonly name: SuiteName;
  /** One line on what the suite proves. */
  readonly description: string;
  /** Highest number of VUs the suite runs at once. */
  readonly vus: number;
  /** Planned run time, setup and teardown excluded. */
  readonly duration: string;
  /** Tier of the tenants the setup creates. */
  readonly tier: string;
  /** Number of tenants the setup creates; VUs are spread over them. */
  readonly tenants: number;
  /**
   * Highest k6-operator parallelism the suite supports. Each runner evaluates the thresholds on its own
   * share of the load, so the request floors are sized for a runner at this parallelism.
   */
  readonly maxParallelism: number;
  /** k6 options: scenarios and thresholds (the gates). */
  readonly options: Options & { scenarios: NonNullable<Options['scenarios']> };
}

// Setup provisions real tenants (database role, secret, budget, namespace): allow more than k6's 60 s default.
const LIFECYCLE_TIMEOUTS = { setupTimeout: '3m', teardownTimeout: '2m' } as const;

// Every suite gets a floor on request count, because a threshold on a metric without data passes.
function trafficThresholds(limits: {
  p95Ms: number;
  p99Ms: number;
  failedRate: number;
  abortFailedRate: number;
  checksRate: number;
  minRequests: number;
}): Record<string, Threshold[]> {
  return {
    http_req_duration: [`p(95)<${limits.p95Ms}`, `p(99)<${limits.p99Ms}`],
    http_req_failed: [
      `rate<${limits.failedRate}`,
      // Stop early when the service is clearly down; the delay lets the first samples arrive.
      { threshold: `rate<${limits.abortFailedRate}`, abortOnFail: true, delayAbortEval: '15s' },
    ],
    checks: [`rate>${limits.checksRate}`],
    http_reqs: [`count>${limits.minRequests}`],
  };
}

export const SUITES: Readonly<Record<SuiteName, SuiteDefinition>> = {
  smoke: {
    name: 'smoke',
    description: 'One VU runs the tenant route mix (me, usage, admission, release); any error fails.',
    vus: 1,
    duration: '30s',
    tier: 'pro',
    tenants: 1,
    maxParallelism: 1,
    options: {
      ...LIFECYCLE_TIMEOUTS,
      scenarios: {
        traffic: { executor: 'constant-vus', vus: 1, duration: '30s', exec: 'traffic' },
      },
      thresholds: {
        ...trafficThresholds({
          p95Ms: 300,
          p99Ms: 1000,
          failedRate: 0.001,
          abortFailedRate: 0.5,
          checksRate: 0.999,
          // About 4 requests a second for 30 s.
          minRequests: 40,
        }),
        iterations: ['count>10'],
      },
    },
  },
  load: {
    name: 'load',
    description: 'Ten VUs hold a steady tenant mix over three tenants.',
    vus: 10,
    duration: '1m',
    tier: 'pro',
    tenants: 3,
    maxParallelism: 2,
    options: {
      ...LIFECYCLE_TIMEOUTS,
      scenarios: {
        traffic: { executor: 'constant-vus', vus: 10, duration: '1m', exec: 'traffic' },
      },
      thresholds: {
        ...trafficThresholds({
          p95Ms: 500,
          p99Ms: 1500,
          failedRate: 0.01,
          abortFailedRate: 0.2,
          checksRate: 0.99,
          // About 2,400 requests in one runner; a runner at parallelism 2 sees half.
          minRequests: 600,
        }),
        iterations: ['count>150'],
      },
    },
  },
  peak: {
    name: 'peak',
    description: 'VUs ramp to 50 over five tenants, hold, and ramp down.',
    vus: 50,
    duration: '2m',
    tier: 'pro',
    tenants: 5,
    maxParallelism: 5,
    options: {
      ...LIFECYCLE_TIMEOUTS,
      scenarios: {
        traffic: {
          executor: 'ramping-vus',
          startVUs: 0,
          stages: [
            { duration: '30s', target: 50 },
            { duration: '1m', target: 50 },
            { duration: '30s', target: 0 },
          ],
          gracefulRampDown: '10s',
          exec: 'traffic',
        },
      },
      thresholds: {
        ...trafficThresholds({
          p95Ms: 800,
          p99Ms: 2000,
          failedRate: 0.02,
          abortFailedRate: 0.2,
          checksRate: 0.98,
          // About 18,000 requests in one runner; a runner at parallelism 5 sees a fifth.
          minRequests: 1500,
        }),
        iterations: ['count>400'],
      },
    },
  },
  ratelimit: {
    name: 'ratelimit',
    description:
      'Tenants burst past their tier limit while another stays under it; 429s only past the limit.',
    vus: 2,
    duration: '30s',
    tier: 'free',
    // Exact 429 counts need one runner that sees all of a tenant's requests.
    tenants: 2,
    maxParallelism: 1,
    // A burst must leave in one go: allow as many parallel requests per host as the burst needs.
    options: {
      ...LIFECYCLE_TIMEOUTS,
      batch: 1000,
      batchPerHost: 1000,
      scenarios: {
        at_limit: {
          executor: 'per-vu-iterations',
          vus: 1,
          iterations: RATELIMIT_ROUNDS,
          maxDuration: '1m',
          exec: 'atLimit',
        },
        under_limit: { executor: 'constant-vus', vus: 1, duration: '30s', exec: 'underLimit' },
      },
      thresholds: {
        [CUSTOM_METRICS.ratelimitExact]: [{ threshold: 'rate==1', abortOnFail: true, delayAbortEval: '5s' }],
        [CUSTOM_METRICS.ratelimitExpected429]: ['count>0'],
        [CUSTOM_METRICS.ratelimitUnexpected429]: ['count==0'],
        // The provoked 429s are marked expected per request, so any failure here is a real one.
        http_req_failed: ['rate==0'],
        http_req_duration: ['p(95)<500'],
        checks: ['rate==1'],
        http_reqs: ['count>40'],
      },
    },
  },
  isolation: {
    name: 'isolation',
    description:
      "Tenant A's key is tried on tenant B's operator routes, keys and tasks; all must be refused.",
    vus: 1,
    duration: '20s',
    tier: 'pro',
    // Attempts are checked one by one against setup's tenants; splitting them adds nothing.
    tenants: 2,
    maxParallelism: 1,
    options: {
      ...LIFECYCLE_TIMEOUTS,
      scenarios: {
        attempts: { executor: 'constant-vus', vus: 1, duration: '20s', exec: 'attempts' },
      },
      thresholds: {
        // One breach is a security failure: stop the run at once.
        [CUSTOM_METRICS.isolationBreaches]: [{ threshold: 'count==0', abortOnFail: true }],
        [CUSTOM_METRICS.isolationAttempts]: ['count>50'],
        // Refusals are marked expected per request, so any failure here is a real one.
        http_req_failed: ['rate==0'],
        http_req_duration: ['p(95)<500'],
        checks: ['rate==1'],
        http_reqs: ['count>60'],
      },
    },
  },
};

/** Options for one suite, for a script's `export const options`. */
export function suiteOptions(name: SuiteName): Options {
  return { ...SUITES[name].options, summaryTrendStats: SUMMARY_TREND_STATS };
}

/** Threshold expressions as text, `metric: expression`, in declaration order. */
export function thresholdLines(name: SuiteName): string[] {
  const lines: string[] = [];
  for (const [metric, list] of Object.entries(SUITES[name].options.thresholds ?? {})) {
    for (const threshold of list) {
      if (typeof threshold === 'string') lines.push(`${metric}: ${threshold}`);
      else {
        const abort = threshold.abortOnFail
          ? ` (abort on fail${threshold.delayAbortEval ? ` after ${threshold.delayAbortEval}` : ''})`
          : '';
        lines.push(`${metric}: ${threshold.threshold}${abort}`);
      }
    }
  }
  return lines;
}

export interface SuiteListing {
  /** Suite name. */
  readonly name: SuiteName;
  /** What the suite proves. */
  readonly description: string;
  /** Highest number of VUs at once. */
  readonly vus: number;
  /** Planned run time. */
  readonly duration: string;
  /** Threshold expressions, `metric: expression`. */
  readonly thresholds: string[];
}

/** Every suite with its VUs, duration and thresholds, for the README table. */
export function listSuites(): SuiteListing[] {
  return SUITE_NAMES.map((name) => {
    const suite = SUITES[name];
    return {
      name,
      description: suite.description,
      vus: suite.vus,
      duration: suite.duration,
      thresholds: thresholdLines(name),
    };
  });
}

/** The suites as a Markdown table. */
export function formatSuitesTable(): string {
  const rows = listSuites().map(
    (s) =>
      `| ${s.name} | ${s.vus} | ${s.duration} | ${s.description} | ${s.thresholds.map((t) => `\`${t}\``).join('<br>')} |`,
  );
  return ['| suite | VUs | duration | what it proves | thresholds |', '|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}

export function isSuiteName(value: string): value is SuiteName {
  return (SUITE_NAMES as readonly string[]).includes(value);
}

import { z } from 'zod';
import { ENVIRONMENT_NAMES } from '../config/environments.ts';

/** Thrown when the service's environment variables are invalid; one line naming the variable and value. */
export class ControlPlaneConfigError extends Error {
  override readonly name = 'ControlPlaneConfigError';
}

const int = (min: number) => z.coerce.number().int().min(min);
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const configSchema = z
  .object({
    /** Environment name; picks the platform config the provisioner uses. */
    ENV: z.enum(ENVIRONMENT_NAMES).default('dev'),
    PORT: int(0).max(65_535).default(8080),
    HOST: z.string().min(1).default('0.0.0.0'),
    /**
     * Public domain: tenants are `{tenant}.app.<domain>`, operators `api.<domain>`, and any other host is refused.
     * @default - no host rules (local and dev runs): any host, and the API key alone names the tenant
     */
    PUBLIC_DOMAIN: optionalText.pipe(
      z
        .string()
        .regex(
          /^(?=.{4,200}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/,
          'must be a lowercase DNS name such as agents.example.com',
        )
        .optional(),
    ),
    /** @default - the embedded PostgreSQL (tenants/embedded-database.ts) */
    DATABASE_URL: optionalText.pipe(z.url().optional()),
    DB_POOL_MAX: int(1).default(10),
    /** @default - in-memory rate limits and admission slots (one process only) */
    REDIS_URL: optionalText.pipe(z.url().optional()),
    /** Prefix of every Redis key this service writes. */
    REDIS_KEY_PREFIX: z.string().min(1).default('cp:'),
    /** HS256 shared secret for operator JWTs (at least 32 bytes). */
    JWT_SECRET: optionalText.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
    /** PEM (SPKI) public key for operator JWTs signed with JWT_ALGORITHM. */
    JWT_PUBLIC_KEY: optionalText,
    /** JWKS URL for operator JWTs. */
    JWT_JWKS_URL: optionalText.pipe(z.url().optional()),
    /** Algorithm of JWT_PUBLIC_KEY. */
    JWT_ALGORITHM: z.enum(['RS256', 'ES256', 'EdDSA', 'PS256']).default('RS256'),
    JWT_ISSUER: optionalText,
    JWT_AUDIENCE: optionalText,
    SENTRY_DSN: optionalText.pipe(z.url().optional()),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    BODY_LIMIT_BYTES: int(256).default(16_384),
    /** How long a verified API key stays cached in this process. */
    KEY_CACHE_TTL_MS: int(0).default(10_000),
    /** How long a tenant's tier and status stay cached in this process. */
    TENANT_CACHE_TTL_MS: int(0).default(2_000),
    /** Most usage reports written in one group commit. */
    USAGE_FLUSH_MAX_REPORTS: int(1).default(2_000),
    /** How long an Idempotency-Key is remembered in Redis; PostgreSQL keeps it for good. */
    IDEMPOTENCY_TTL_SECONDS: int(1).default(172_800),
    /** Failed authentications one source IP, or one key prefix, may make per minute before it is blocked. */
    AUTH_FAILURES_PER_MINUTE: int(1).default(20),
    AUTH_BLOCK_SECONDS: int(1).default(300),
    /** How often a task's runner must heartbeat its lease. */
    LEASE_HEARTBEAT_MS: int(50).default(30_000),
    /** A lease expires, and frees its slot, after this many heartbeat intervals without one. */
    LEASE_EXPIRY_HEARTBEATS: int(2).default(3),
    /** How often leased minutes are written to the catalog (ended leases are kept until written). */
    LEASE_METER_FLUSH_MS: int(50).default(5_000),
    /**
     * Proxies whose X-Forwarded-For is trusted: `false`, a hop count (e.g. `1` behind one load balancer),
     * or a comma-separated list of IPs and CIDRs (e.g. `10.0.0.0/16`). `true` would trust any forged hop.
     */
    TRUST_PROXY: z
      .string()
      .default('false')
      .transform((v, ctx): false | number | string[] => {
        const text = v.trim();
        if (text === 'false' || text === '' || text === '0') return false;
        if (/^\d+$/.test(text)) return Number(text);
        const entries = text.split(',').map((e) => e.trim());
        if (
          entries.every((e) => z.union([z.cidrv4(), z.cidrv6(), z.ipv4(), z.ipv6()]).safeParse(e).success)
        ) {
          return entries;
        }
        ctx.addIssue({
          code: 'custom',
          message:
            'give false, a hop count, or a comma-separated list of proxy IPs/CIDRs (true trusts forged hops)',
        });
        return z.NEVER;
      }),
    /** Longest lifetime (exp - iat) and age an operator JWT may have. */
    JWT_MAX_LIFETIME_SECONDS: int(60).default(43_200),
    /** While PostgreSQL is unreachable, cached tenant status and keys are served this long past their TTL. */
    CATALOG_OUTAGE_GRACE_MS: int(0).default(60_000),
    /** While a store is down, one summary log line per this interval instead of one per request. */
    OUTAGE_LOG_INTERVAL_MS: int(100).default(10_000),
    SHUTDOWN_TIMEOUT_MS: int(100).default(10_000),
    /** Tenant manifests directory (create, tier, suspend, resume). @default - out/manifests, as the tenant CLI */
    MANIFESTS_DIR: optionalText,
    /**
     * Where tenant charts, quotas and Jobs change: `in-cluster`, a kubeconfig context, or `none`.
     * @default - in-cluster inside a pod (KUBERNETES_SERVICE_HOST is set), otherwise none
     */
    KUBE_API: optionalText,
    /** Run the provisioner's AWS steps (secret, budget). */
    AWS_PROVISIONING: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    /** OIDC issuer of the operator console's sign-in. @default - console sign-in off (/console/ says so) */
    OIDC_ISSUER_URL: optionalText.pipe(z.url().optional()),
    OIDC_CLIENT_ID: optionalText,
    /** Client secret; unset for a public client (PKCE alone). */
    OIDC_CLIENT_SECRET: optionalText,
    OIDC_SCOPES: z.string().min(1).default('openid email profile'),
    /** Claim holding the operator role (a string or a list, e.g. groups). */
    OIDC_ROLE_CLAIM: z.string().min(1).default('role'),
    /** Claim values per role, `admin=grp-a,operator=grp-b,viewer=grp-c`. @default - the role names themselves */
    OIDC_ROLE_MAP: optionalText,
    /** Accept an http:// issuer (a local test provider only). */
    OIDC_ALLOW_HTTP: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    /** Public origin of the console, e.g. https://console.example.com; the OIDC redirect goes to its /console/callback. */
    CONSOLE_PUBLIC_URL: optionalText.pipe(z.url().optional()),
    CONSOLE_SESSION_TTL_SECONDS: int(60).max(86_400).default(28_800),
    PORTAL_SESSION_TTL_SECONDS: int(60).max(86_400).default(900),
    /** How often console and portal pages refresh their live figures. */
    CONSOLE_POLL_MS: int(500).default(5_000),
  })
  .superRefine((c, ctx) => {
    if (c.OIDC_ISSUER_URL !== undefined) {
      for (const name of ['OIDC_CLIENT_ID', 'CONSOLE_PUBLIC_URL'] as const) {
        if (c[name] === undefined) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'required when OIDC_ISSUER_URL is set' });
        }
      }
      if (!c.OIDC_ALLOW_HTTP && !c.OIDC_ISSUER_URL.startsWith('https://')) {
        ctx.addIssue({
          code: 'custom',
          path: ['OIDC_ISSUER_URL'],
          message: 'must be https:// (OIDC_ALLOW_HTTP=true for a local test provider)',
        });
      }
    }
    if (c.PUBLIC_DOMAIN !== undefined && c.CONSOLE_PUBLIC_URL !== undefined) {
      // The console's host serves operators; on a tenant's host it would open operator routes to that host.
      if (new URL(c.CONSOLE_PUBLIC_URL).hostname.endsWith(`.app.${c.PUBLIC_DOMAIN}`)) {
        ctx.addIssue({
          code: 'custom',
          path: ['CONSOLE_PUBLIC_URL'],
          message: `must not be a tenant host (*.app.${c.PUBLIC_DOMAIN})`,
        });
      }
    }
    const keys = [c.JWT_SECRET, c.JWT_PUBLIC_KEY, c.JWT_JWKS_URL].filter((v) => v !== undefined);
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_SECRET'],
        message: `set exactly one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL (${keys.length} set)`,
      });
    }
  });

export type ControlPlaneConfig = z.infer<typeof configSchema>;

const SECRET_VARIABLES = new Set([
  'JWT_SECRET',
  'DATABASE_URL',
  'REDIS_URL',
  'SENTRY_DSN',
  'OIDC_CLIENT_SECRET',
]);

/** Reads the configuration from environment variables; throws ControlPlaneConfigError on the first bad one. */
export function loadControlPlaneConfig(env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig {
  const result = configSchema.safeParse(env);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const name = String(issue.path[0] ?? 'environment');
  const value = env[name];
  const shown =
    value === undefined ? 'unset' : SECRET_VARIABLES.has(name) ? '<redacted>' : JSON.stringify(value);
  throw new ControlPlaneConfigError(`invalid ${name} (${shown}): ${issue.message}`);
}

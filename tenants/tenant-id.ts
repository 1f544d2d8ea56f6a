/** Thrown for an invalid tenant id; one line naming the value and the rule it breaks. */
export class TenantIdError extends Error {
  override readonly name = 'TenantIdError';
}

/**
 * Names that would collide with DNS hosts, PostgreSQL system schemas and roles,
 * Kubernetes system namespaces or the platform's own components.
 */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = new Set([
  'www',
  'api',
  'app',
  'admin',
  'administrator',
  'root',
  'mail',
  'smtp',
  'ftp',
  'ns1',
  'ns2',
  'status',
  'docs',
  'help',
  'support',
  'billing',
  'blog',
  'static',
  'assets',
  'cdn',
  'auth',
  'login',
  'sso',
  'dashboard',
  'console',
  'public',
  'information_schema',
  'postgres',
  'template0',
  'template1',
  'rdsadmin',
  'rds_superuser',
  'control',
  'catalog',
  'system',
  'default',
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'platform',
  'monitoring',
  'observability',
  'ingress',
  'ingress-nginx',
  'cert-manager',
  'k6',
  'k6-operator',
  'cost-guard',
  'control-plane',
  'tenant',
  'tenants',
  'test',
  'internal',
  'localhost',
]);

const RESERVED_PREFIXES = ['pg_', 'pg-', 'kube-', 'rds-', 'aws-', 'xn--'];

const TENANT_ID_PATTERN = /^[a-z][a-z0-9-]*[a-z0-9]$/;

/** Returns why `id` is not a valid tenant id, or undefined when it is valid. */
export function tenantIdProblem(id: string): string | undefined {
  if (id.length < 3 || id.length > 30) return `must be 3 to 30 characters, got ${id.length}`;
  const prefix = RESERVED_PREFIXES.find((p) => id.startsWith(p));
  if (prefix) return `must not start with the reserved prefix '${prefix}'`;
  if (!/^[a-z]/.test(id)) return 'must start with a lowercase letter';
  if (!TENANT_ID_PATTERN.test(id)) return 'must contain only a-z, 0-9 and inner hyphens';
  if (id.includes('--')) return 'must not contain consecutive hyphens';
  if (RESERVED_TENANT_IDS.has(id)) return 'is reserved';
  return undefined;
}

/** Validates and returns the id, or throws TenantIdError. */
export function parseTenantId(id: string): string {
  const problem = tenantIdProblem(id);
  if (problem) throw new TenantIdError(`invalid tenant id ${JSON.stringify(id)}: ${problem}`);
  return id;
}

import { z } from 'zod';

/** Thrown when an environment config is unknown or invalid; the message is one line naming the field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const ENVIRONMENT_NAMES = ['dev', 'staging', 'prod'] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

/** Account in the shipped configs: offline synth and the tests use it; a deploy refuses it (stacks/README.md). */
export const PLACEHOLDER_ACCOUNT = '123456789012';

/** Region the shipped configs are written for. */
export const DEFAULT_REGION = 'us-east-1';

/**
 * AZ names per region, so that synth for another region needs no look-up. Every account sees these names in
 * these regions; for any other region pass `-c availabilityZones=...` (from `aws ec2 describe-availability-zones`).
 */
export const KNOWN_AVAILABILITY_ZONES: Readonly<Record<string, readonly string[]>> = {
  'us-east-1': ['us-east-1a', 'us-east-1b', 'us-east-1c'],
  'eu-west-1': ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
};

const ipv4Cidr = z
  .string()
  .regex(/^(\d{1,3})(\.\d{1,3}){3}\/(\d|[12]\d|3[0-2])$/, 'must be an IPv4 CIDR such as 203.0.113.0/24');

/** IAM roles (Identity Center permission-set roles keep their `aws-reserved/sso.amazonaws.com/` path) or users. */
const iamPrincipalArn = z
  .string()
  .regex(
    /^arn:aws:iam::\d{12}:(role|user)\/[\w+=,.@/-]{1,512}$/,
    'must be the ARN of an existing IAM role or user, e.g. arn:aws:iam::111122223333:role/platform-admin',
  );

const dnsName = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a lowercase DNS name');

const nodeGroupSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{1,40}$/),
  instanceTypes: z.array(z.string().regex(/^[a-z0-9]+\.[a-z0-9]+$/)).min(1),
  minSize: z.number().int().min(0),
  desiredSize: z.number().int().min(0),
  maxSize: z.number().int().min(1),
  diskSizeGiB: z.number().int().min(20),
});

export const environmentConfigSchema = z
  .object({
    name: z.enum(ENVIRONMENT_NAMES),
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as us-east-1'),
    /** Written out so that synth never looks them up in AWS. */
    availabilityZones: z
      .array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/))
      .min(2)
      .max(3),
    /** Tenants live at `{tenant}.app.<domain>`. */
    domain: dnsName,
    /**
     * An existing public Route 53 hosted zone for `domain`. Absent, the workloads stack creates the zone, whose
     * name servers the parent domain must then delegate to.
     */
    hostedZoneId: z
      .string()
      .regex(/^Z[0-9A-Z]{1,31}$/, 'must be a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ')
      .optional(),
    alertEmail: z.email('must be an e-mail address'),
    costCenter: z.string().min(1),
    network: z.object({
      cidr: z
        .string()
        .regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/, 'must be an IPv4 CIDR from /16 to /24'),
      natGateways: z.number().int().min(1).max(3),
      flowLogRetentionDays: z.number().int().positive(),
    }),
    database: z.object({
      /** Full minor version, e.g. 16.6: cfn-lint flags major-only versions. */
      engineVersion: z.string().regex(/^\d+\.\d+$/, 'must be a full minor version such as 16.11'),
      instanceClass: z
        .string()
        .regex(/^[a-z0-9]+\.[a-z0-9]+$/, 'must be an instance class such as t4g.medium'),
      allocatedStorageGiB: z.number().int().min(20),
      maxAllocatedStorageGiB: z.number().int().min(20),
      backupRetentionDays: z.number().int().min(1).max(35),
      deletionProtection: z.boolean(),
      performanceInsightsRetentionDays: z.number().int().positive(),
      monitoringIntervalSeconds: z.union([
        z.literal(1),
        z.literal(5),
        z.literal(10),
        z.literal(15),
        z.literal(30),
        z.literal(60),
      ]),
      secretRotationDays: z.number().int().min(1).max(365),
    }),
    /**
     * Cell databases holding the tenant schemas (the catalog is DATABASE_URL, a database of its own). New
     * tenants go to the least-loaded cell with room; `tenant move` takes one to another cell.
     */
    cells: z
      .array(
        z.strictObject({
          id: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'must be a short lowercase id such as cell-1'),
          /** Tenants the cell may hold; placement skips a full cell. */
          capacity: z.number().int().positive(),
          /**
           * Database name; it also names the cell's group role `<database>_tenants`.
           * @default - `<catalog database>_<id>`, '-' written '_' (agent_platform_cell_1)
           */
          database: z
            .string()
            .regex(/^[a-z][a-z0-9_]{0,46}$/, 'must be a lowercase database name of at most 47 characters')
            .optional(),
          /** @default - the catalog's server */
          host: z.string().min(1).optional(),
          /** @default - the catalog's port */
          port: z.number().int().min(1).max(65_535).optional(),
        }),
      )
      .min(1, 'must list at least one cell'),
    cache: z.object({
      engineVersion: z.string().regex(/^\d+\.\d+$/),
      nodeType: z
        .string()
        .regex(/^cache\.[a-z0-9]+\.[a-z0-9]+$/, 'must be a node type such as cache.t4g.small'),
      /** Primary plus replicas; at least 2 for automatic failover. */
      nodeCount: z.number().int().min(2).max(6),
      snapshotRetentionDays: z.number().int().min(1).max(35),
    }),
    cluster: z.object({
      kubernetesVersion: z.string().regex(/^1\.\d+$/),
      nodeGroups: z.array(nodeGroupSchema).min(1),
      /**
       * Existing IAM principals that get cluster-admin through an access entry; EKS refuses a principal that does
       * not exist. `-c adminPrincipalArns=arn1,arn2` replaces them.
       */
      adminPrincipalArns: z.array(iamPrincipalArn).min(1, 'must name at least one existing IAM principal'),
      /**
       * Where the public API endpoint answers (the private one always does). Prod must name its CIDRs and may
       * not open to 0.0.0.0/0. `-c publicAccessCidrs=cidr1,cidr2` replaces them.
       */
      publicAccessCidrs: z.array(ipv4Cidr).min(1, 'must name at least one CIDR'),
    }),
    observability: z.object({
      logRetentionDays: z.number().int().positive(),
      betterStackEnabled: z.boolean(),
    }),
    budget: z.object({
      /** Whole-account monthly budget in USD. */
      monthlyLimitUsd: z.number().positive(),
    }),
    costGuard: z.object({
      /** Kill switch: when false the guard records and reports but never acts. */
      enforcementEnabled: z.boolean(),
      /** When false, suspensions need --approve-suspend. */
      autoSuspend: z.boolean(),
      maxActionsPerRun: z.number().int().min(0),
      maxActionsPercent: z.number().min(0).max(100),
      /** Cost Explorer data older than this is stale, and stale data is never acted on. */
      maxDataAgeHours: z.number().positive(),
    }),
    /** DR drill targets; a missed target fails the drill. Reasons are in runbooks/rds-failover.md and friends. */
    drills: z.object({
      /** First failed write to first successful one. 120: AWS quotes 60-120 s for a Multi-AZ failover. */
      failoverRtoSeconds: z.number().positive(),
      /** Restore plus verification, end to end. 1800: a 50-200 GiB snapshot restore takes 10-20 min. */
      restoreRtoSeconds: z.number().positive(),
      /** Source's last write minus the restored point. 300: RDS ships transaction logs about every 5 min. */
      rpoSeconds: z.number().positive(),
    }),
    /** GitHub Actions reach this environment through GitHub's OIDC provider (stacks/github.ts, .github/). */
    github: z.object({
      /** `owner/name` of the only repository whose workflows may assume the roles. */
      repository: z
        .string()
        .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be a repository such as owner/name'),
      /**
       * An account holds one GitHub OIDC provider: `create` makes it, `import` uses the one another
       * environment's stack made in the same account.
       */
      oidcProvider: z.enum(['create', 'import']),
      /** GitHub Environments whose jobs may assume each role; a role exists only where one is named. */
      environments: z.object({
        /** cdk diff and deploy through the CDK bootstrap roles. */
        deploy: z.string().min(1).optional(),
        /** Read-only cdk diff: the CDK lookup role only. */
        diff: z.string().min(1).optional(),
        /** The k6 gates: read the stacks' outputs (the endpoint), nothing else. */
        loadGate: z.string().min(1).optional(),
        /** The DR drills, scoped to the drill-tagged copies. */
        drills: z.string().min(1).optional(),
      }),
    }),
  })
  .superRefine((config, ctx) => {
    for (const use of ['drills', 'loadGate'] as const) {
      if (config.name === 'prod' && config.github.environments[use] !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['github', 'environments', use],
          message: 'is refused in prod: CI runs load gates and drills against staging only',
        });
      }
    }
    if (config.name === 'prod') {
      for (const [i, cidr] of config.cluster.publicAccessCidrs.entries()) {
        if (cidr.endsWith('/0')) {
          ctx.addIssue({
            code: 'custom',
            path: ['cluster', 'publicAccessCidrs', i],
            message: "opens the prod API endpoint to the whole internet: name the operators' CIDRs",
          });
        }
      }
    }
    const seenCells = new Map<string, string>();
    for (const [i, cell] of config.cells.entries()) {
      const where = `${cell.host ?? ''}:${cell.port ?? ''}/${cell.database ?? cell.id}`;
      for (const [key, value] of [
        [`id ${cell.id}`, 'id'],
        [`database ${where}`, 'database'],
      ] as const) {
        if (seenCells.has(key))
          ctx.addIssue({
            code: 'custom',
            path: ['cells', i, value],
            message: `repeats ${seenCells.get(key)}`,
          });
        seenCells.set(key, `cells[${i}]`);
      }
    }
    for (const [i, zone] of config.availabilityZones.entries()) {
      if (!zone.startsWith(config.region)) {
        ctx.addIssue({
          code: 'custom',
          path: ['availabilityZones', i],
          message: `is not in region ${config.region}`,
        });
      }
    }
    if (config.name === 'prod' && config.availabilityZones.length < 3) {
      ctx.addIssue({
        code: 'custom',
        path: ['availabilityZones'],
        message: 'prod needs 3 availability zones',
      });
    }
    if (config.network.natGateways > config.availabilityZones.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'natGateways'],
        message: 'cannot exceed the number of AZs',
      });
    }
    if (config.database.maxAllocatedStorageGiB <= config.database.allocatedStorageGiB) {
      ctx.addIssue({
        code: 'custom',
        path: ['database', 'maxAllocatedStorageGiB'],
        message: 'must be greater than allocatedStorageGiB for storage autoscaling',
      });
    }
    for (const [i, group] of config.cluster.nodeGroups.entries()) {
      if (!(group.minSize <= group.desiredSize && group.desiredSize <= group.maxSize)) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster', 'nodeGroups', i, 'desiredSize'],
          message: 'must satisfy minSize <= desiredSize <= maxSize',
        });
      }
    }
  });

export type EnvironmentConfig = z.infer<typeof environmentConfigSchema>;

/** The pinned versions; config/support-calendar.ts holds their end-of-standard-support dates. */
export const POSTGRES_VERSION = '16.11';
export const KUBERNETES_VERSION = '1.35';

/** The repository whose GitHub Actions workflows deploy and test the platform. */
const GITHUB_REPOSITORY = 'generic-corp/agent-platform-infra';

const shared = {
  account: PLACEHOLDER_ACCOUNT,
  region: DEFAULT_REGION,
  costCenter: 'agent-platform',
  // One cell on the catalog's server; add cells (another database, or another server) as the fleet grows.
  cells: [{ id: 'cell-1', capacity: 5000 }],
  cluster: {
    kubernetesVersion: KUBERNETES_VERSION,
    // Placeholders for offline synth: name the real roles here or with -c adminPrincipalArns=... (README).
    adminPrincipalArns: [`arn:aws:iam::${PLACEHOLDER_ACCOUNT}:role/platform-admin`],
  },
};

export const ENVIRONMENTS: Record<EnvironmentName, unknown> = {
  dev: {
    ...shared,
    name: 'dev',
    availabilityZones: ['us-east-1a', 'us-east-1b'],
    domain: 'dev.agents.example.com',
    alertEmail: 'sre-dev@example.com',
    network: { cidr: '10.10.0.0/16', natGateways: 1, flowLogRetentionDays: 7 },
    database: {
      engineVersion: POSTGRES_VERSION,
      instanceClass: 't4g.medium',
      allocatedStorageGiB: 20,
      maxAllocatedStorageGiB: 100,
      backupRetentionDays: 3,
      deletionProtection: false,
      performanceInsightsRetentionDays: 7,
      monitoringIntervalSeconds: 60,
      secretRotationDays: 30,
    },
    cache: { engineVersion: '7.1', nodeType: 'cache.t4g.small', nodeCount: 2, snapshotRetentionDays: 1 },
    cluster: {
      ...shared.cluster,
      // dev is reachable from anywhere; access entries still decide who gets in.
      publicAccessCidrs: ['0.0.0.0/0'],
      nodeGroups: [
        {
          name: 'general',
          instanceTypes: ['t3.large'],
          minSize: 1,
          desiredSize: 2,
          maxSize: 4,
          diskSizeGiB: 50,
        },
      ],
    },
    observability: { logRetentionDays: 14, betterStackEnabled: false },
    budget: { monthlyLimitUsd: 1500 },
    costGuard: {
      enforcementEnabled: true,
      autoSuspend: true,
      maxActionsPerRun: 50,
      maxActionsPercent: 50,
      maxDataAgeHours: 36,
    },
    drills: { failoverRtoSeconds: 120, restoreRtoSeconds: 1800, rpoSeconds: 300 },
    github: { repository: GITHUB_REPOSITORY, oidcProvider: 'import', environments: {} },
  },
  staging: {
    ...shared,
    name: 'staging',
    availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'],
    domain: 'staging.agents.example.com',
    alertEmail: 'sre-staging@example.com',
    network: { cidr: '10.20.0.0/16', natGateways: 1, flowLogRetentionDays: 30 },
    database: {
      engineVersion: POSTGRES_VERSION,
      instanceClass: 'm6g.large',
      allocatedStorageGiB: 50,
      maxAllocatedStorageGiB: 200,
      backupRetentionDays: 7,
      deletionProtection: false,
      performanceInsightsRetentionDays: 7,
      monitoringIntervalSeconds: 30,
      secretRotationDays: 30,
    },
    cache: { engineVersion: '7.1', nodeType: 'cache.t4g.medium', nodeCount: 2, snapshotRetentionDays: 3 },
    cluster: {
      ...shared.cluster,
      // 203.0.113.0/24 is a documentation range (RFC 5737): replace with the operators' egress CIDRs.
      publicAccessCidrs: ['203.0.113.0/24'],
      nodeGroups: [
        {
          name: 'general',
          instanceTypes: ['m6i.large'],
          minSize: 2,
          desiredSize: 3,
          maxSize: 6,
          diskSizeGiB: 50,
        },
      ],
    },
    observability: { logRetentionDays: 30, betterStackEnabled: true },
    budget: { monthlyLimitUsd: 4000 },
    costGuard: {
      enforcementEnabled: true,
      autoSuspend: false,
      maxActionsPerRun: 20,
      maxActionsPercent: 10,
      maxDataAgeHours: 36,
    },
    drills: { failoverRtoSeconds: 120, restoreRtoSeconds: 1800, rpoSeconds: 300 },
    github: {
      repository: GITHUB_REPOSITORY,
      oidcProvider: 'create',
      environments: { deploy: 'staging', loadGate: 'staging-load-gate', drills: 'staging-dr-drill' },
    },
  },
  prod: {
    ...shared,
    name: 'prod',
    availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'],
    domain: 'agents.example.com',
    alertEmail: 'sre-oncall@example.com',
    network: { cidr: '10.30.0.0/16', natGateways: 3, flowLogRetentionDays: 90 },
    database: {
      engineVersion: POSTGRES_VERSION,
      instanceClass: 'm6g.xlarge',
      allocatedStorageGiB: 200,
      maxAllocatedStorageGiB: 1000,
      backupRetentionDays: 14,
      deletionProtection: true,
      performanceInsightsRetentionDays: 31,
      monitoringIntervalSeconds: 15,
      secretRotationDays: 30,
    },
    cache: { engineVersion: '7.1', nodeType: 'cache.m6g.large', nodeCount: 3, snapshotRetentionDays: 7 },
    cluster: {
      ...shared.cluster,
      // 198.51.100.0/24 is a documentation range (RFC 5737): replace with the operators' egress CIDRs.
      publicAccessCidrs: ['198.51.100.0/24'],
      nodeGroups: [
        {
          name: 'general',
          instanceTypes: ['m6i.xlarge'],
          minSize: 3,
          desiredSize: 3,
          maxSize: 12,
          diskSizeGiB: 100,
        },
        {
          name: 'agents',
          instanceTypes: ['c6i.2xlarge'],
          minSize: 0,
          desiredSize: 2,
          maxSize: 20,
          diskSizeGiB: 100,
        },
      ],
    },
    observability: { logRetentionDays: 365, betterStackEnabled: true },
    budget: { monthlyLimitUsd: 25000 },
    costGuard: {
      enforcementEnabled: true,
      autoSuspend: false,
      maxActionsPerRun: 10,
      maxActionsPercent: 5,
      maxDataAgeHours: 36,
    },
    drills: { failoverRtoSeconds: 120, restoreRtoSeconds: 1800, rpoSeconds: 300 },
    // staging made the account's provider; set 'create' when prod has an account of its own.
    github: {
      repository: GITHUB_REPOSITORY,
      oidcProvider: 'import',
      environments: { deploy: 'prod', diff: 'prod-diff' },
    },
  },
};

function formatIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const path = issue.path.join('.');
  let value: unknown = raw;
  for (const key of issue.path) {
    value =
      value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  }
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  return `'${path}' (${shown}) ${issue.message}`;
}

/** Validates a raw config; throws ConfigError with one line naming the first bad field and its value. */
export function parseEnvironmentConfig(raw: unknown, source = 'config'): EnvironmentConfig {
  const result = environmentConfigSchema.safeParse(raw);
  if (!result.success) {
    const first = result.error.issues[0]!;
    throw new ConfigError(`invalid ${source}: ${formatIssue(first, raw)}`);
  }
  return result.data;
}

/** Where one synth deploys to, and the per-account values the shipped config cannot know. */
export interface DeployTarget {
  /** @default - the config's account (the placeholder in the shipped configs) */
  readonly account?: string;
  /** @default - the config's region */
  readonly region?: string;
  /** @default - the config's AZs in its own region, else KNOWN_AVAILABILITY_ZONES for the region */
  readonly availabilityZones?: readonly string[];
  /** @default - the config's `cluster.adminPrincipalArns` */
  readonly adminPrincipalArns?: readonly string[];
  /** @default - the config's `cluster.publicAccessCidrs` */
  readonly publicAccessCidrs?: readonly string[];
}

type RawConfig = {
  region: string;
  availabilityZones: string[];
  cluster: Record<string, unknown>;
} & Record<string, unknown>;

function applyTarget(raw: RawConfig, target: DeployTarget): RawConfig {
  const region = target.region ?? raw.region;
  let availabilityZones = target.availabilityZones ? [...target.availabilityZones] : raw.availabilityZones;
  if (!target.availabilityZones && region !== raw.region) {
    const known = KNOWN_AVAILABILITY_ZONES[region];
    if (!known) {
      throw new ConfigError(
        `'availabilityZones' (missing) has no entry for region ${region}: pass -c availabilityZones=${region}a,${region}b,${region}c with the names from 'aws ec2 describe-availability-zones --region ${region}'`,
      );
    }
    availabilityZones = known.slice(0, raw.availabilityZones.length);
  }
  return {
    ...raw,
    ...(target.account === undefined ? {} : { account: target.account }),
    region,
    availabilityZones,
    cluster: {
      ...raw.cluster,
      ...(target.adminPrincipalArns ? { adminPrincipalArns: [...target.adminPrincipalArns] } : {}),
      ...(target.publicAccessCidrs ? { publicAccessCidrs: [...target.publicAccessCidrs] } : {}),
    },
  };
}

/** Looks up and validates the named environment (the `-c env=NAME` value), aimed at the given target. */
export function loadEnvironmentConfig(
  name: string | undefined,
  target: DeployTarget = {},
): EnvironmentConfig {
  if (name === undefined || !(ENVIRONMENT_NAMES as readonly string[]).includes(name)) {
    throw new ConfigError(
      `unknown environment '${name ?? ''}': expected one of ${ENVIRONMENT_NAMES.join(', ')}`,
    );
  }
  const raw = applyTarget(ENVIRONMENTS[name as EnvironmentName] as RawConfig, target);
  return parseEnvironmentConfig(raw, `environment '${name}'`);
}

/** `a,b , c` -> ['a', 'b', 'c']; undefined stays undefined. */
function list(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  return String(value)
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/**
 * The deploy target from CDK context (`-c account=... -c region=...` and friends), falling back to the
 * deploying credentials (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION, which the CDK CLI sets), then to the config.
 */
export function deployTargetFrom(
  context: (key: string) => unknown,
  env: Readonly<Record<string, string | undefined>>,
): DeployTarget {
  const text = (key: string) => {
    const value = context(key);
    return value === undefined ? undefined : String(value);
  };
  const account = text('account') ?? env.CDK_DEFAULT_ACCOUNT;
  const region = text('region') ?? env.CDK_DEFAULT_REGION;
  const availabilityZones = list(context('availabilityZones'));
  const adminPrincipalArns = list(context('adminPrincipalArns'));
  const publicAccessCidrs = list(context('publicAccessCidrs'));
  return {
    ...(account === undefined ? {} : { account }),
    ...(region === undefined ? {} : { region }),
    ...(availabilityZones ? { availabilityZones } : {}),
    ...(adminPrincipalArns ? { adminPrincipalArns } : {}),
    ...(publicAccessCidrs ? { publicAccessCidrs } : {}),
  };
}

/** Name of the SNS alarm topic; the observability stack creates it and tenant budgets notify it. */
export function alarmTopicName(config: EnvironmentConfig): string {
  return `agent-platform-${config.name}-alarms`;
}

export function alarmTopicArn(config: EnvironmentConfig): string {
  return `arn:aws:sns:${config.region}:${config.account}:${alarmTopicName(config)}`;
}

/** The tenant's public hostname, `{tenant}.app.<domain>`. */
export function tenantHostname(config: EnvironmentConfig, tenantId: string): string {
  return `${tenantId}.app.${config.domain}`;
}

import type { EnvironmentConfig } from './environments.ts';

/** One pinned version and the day AWS stops standard support for it (extended support is billed extra). */
export interface SupportWindow {
  readonly product: 'RDS for PostgreSQL' | 'Amazon EKS';
  readonly version: string;
  /** ISO date, UTC. */
  readonly endOfStandardSupport: string;
  /** The calendar the date comes from (stacks/README.md cites them). */
  readonly source: string;
}

const RDS_CALENDAR =
  'https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-release-calendar.html';
const EKS_CALENDAR =
  'https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar';

/**
 * End of standard support of every version a config may pin. RDS: 16.5-16.8 could no longer be created from
 * 1 May 2026 and left standard support on 31 May 2026, with 16.11 as AWS's upgrade target; the calendar gives
 * the date per major version (16: 28 Feb 2029), and RDS moves the minor forward itself
 * (autoMinorVersionUpgrade). EKS: 14 months of standard support per minor version.
 */
export const SUPPORT_CALENDAR: readonly SupportWindow[] = [
  {
    product: 'RDS for PostgreSQL',
    version: '16.8',
    endOfStandardSupport: '2026-05-31',
    source: RDS_CALENDAR,
  },
  {
    product: 'RDS for PostgreSQL',
    version: '16.11',
    endOfStandardSupport: '2029-02-28',
    source: RDS_CALENDAR,
  },
  { product: 'Amazon EKS', version: '1.33', endOfStandardSupport: '2026-07-29', source: EKS_CALENDAR },
  { product: 'Amazon EKS', version: '1.34', endOfStandardSupport: '2026-12-02', source: EKS_CALENDAR },
  { product: 'Amazon EKS', version: '1.35', endOfStandardSupport: '2027-03-27', source: EKS_CALENDAR },
];

/** The versions one config pins, by product. */
export function pinnedVersions(
  config: EnvironmentConfig,
): { product: SupportWindow['product']; version: string }[] {
  return [
    { product: 'RDS for PostgreSQL', version: config.database.engineVersion },
    { product: 'Amazon EKS', version: config.cluster.kubernetesVersion },
  ];
}

/** One line per pinned version that is unknown to the calendar or past its end of standard support on `today`. */
export function supportProblems(
  config: EnvironmentConfig,
  today: Date,
  calendar: readonly SupportWindow[] = SUPPORT_CALENDAR,
): string[] {
  const day = today.toISOString().slice(0, 10);
  return pinnedVersions(config).flatMap(({ product, version }) => {
    const window = calendar.find((w) => w.product === product && w.version === version);
    if (!window)
      return [`${config.name}: ${product} ${version} has no end-of-standard-support date on record`];
    return window.endOfStandardSupport < day
      ? [`${config.name}: ${product} ${version} left standard support on ${window.endOfStandardSupport}`]
      : [];
  });
}

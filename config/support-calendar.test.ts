import { describe, expect, test } from 'vitest';
import {
  ENVIRONMENT_NAMES,
  ENVIRONMENTS,
  type EnvironmentConfig,
  loadEnvironmentConfig,
} from './environments.ts';
import { SUPPORT_CALENDAR, supportProblems } from './support-calendar.ts';

describe.each(ENVIRONMENT_NAMES)('%s pins versions AWS still supports', (env) => {
  test('today', () => {
    expect(supportProblems(loadEnvironmentConfig(env), new Date())).toEqual([]);
  });
});

describe('the support check', () => {
  const withVersions = (engineVersion: string, kubernetesVersion: string): EnvironmentConfig => {
    const config = structuredClone(ENVIRONMENTS.prod) as EnvironmentConfig;
    config.database.engineVersion = engineVersion;
    config.cluster.kubernetesVersion = kubernetesVersion;
    return config;
  };

  test('names the version and the date once a pin passes its end of standard support', () => {
    expect(supportProblems(withVersions('16.8', '1.33'), new Date('2026-12-01T12:00:00Z'))).toEqual([
      'prod: RDS for PostgreSQL 16.8 left standard support on 2026-05-31',
      'prod: Amazon EKS 1.33 left standard support on 2026-07-29',
    ]);
  });

  test('passes on the last day of support and fails the day after', () => {
    const config = withVersions('16.11', '1.34');
    expect(supportProblems(config, new Date('2026-12-02T23:00:00Z'))).toEqual([]);
    expect(supportProblems(config, new Date('2026-12-03T00:00:00Z'))).toEqual([
      'prod: Amazon EKS 1.34 left standard support on 2026-12-02',
    ]);
  });

  test('refuses a version the calendar does not know', () => {
    expect(supportProblems(withVersions('16.6', '1.35'), new Date('2026-12-01'))).toEqual([
      'prod: RDS for PostgreSQL 16.6 has no end-of-standard-support date on record',
    ]);
  });

  test('every calendar date is a real ISO day', () => {
    for (const w of SUPPORT_CALENDAR)
      expect(new Date(w.endOfStandardSupport).toISOString()).toContain(w.endOfStandardSupport);
  });
});

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import {
  ConfigError,
  deployTargetFrom,
  ENVIRONMENTS,
  type EnvironmentConfig,
  loadEnvironmentConfig,
  PLACEHOLDER_ACCOUNT,
  parseEnvironmentConfig,
} from './environments.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

/** The prod config with one change, for table-driven bad-config cases. */
function prodWith(change: (config: EnvironmentConfig) => void): unknown {
  const config = structuredClone(ENVIRONMENTS.prod) as EnvironmentConfig;
  change(config);
  return config;
}

describe('bad environment config fails with one line naming the field and value', () => {
  test('unknown environment', () => {
    expect(() => loadEnvironmentConfig('qa')).toThrow(ConfigError);
    expect(() => loadEnvironmentConfig('qa')).toThrow(
      "unknown environment 'qa': expected one of dev, staging, prod",
    );
  });

  test.each([
    [
      'one AZ in prod',
      (c: EnvironmentConfig) => (c.availabilityZones = ['us-east-1a']),
      /'availabilityZones' \(\["us-east-1a"\]\)/,
    ],
    [
      'negative backup retention',
      (c: EnvironmentConfig) => (c.database.backupRetentionDays = -1),
      /'database\.backupRetentionDays' \(-1\)/,
    ],
    [
      'malformed e-mail',
      (c: EnvironmentConfig) => (c.alertEmail = 'sre-at-example'),
      /'alertEmail' \("sre-at-example"\) must be an e-mail address/,
    ],
    [
      'no cluster admin',
      (c: EnvironmentConfig) => (c.cluster.adminPrincipalArns = []),
      /'cluster\.adminPrincipalArns' \(\[\]\) must name at least one existing IAM principal/,
    ],
    [
      'a malformed admin ARN',
      (c: EnvironmentConfig) => (c.cluster.adminPrincipalArns = ['arn:aws:iam::123:role/admin']),
      /'cluster\.adminPrincipalArns\.0' \("arn:aws:iam::123:role\/admin"\) must be the ARN of an existing IAM role or user/,
    ],
    [
      'the prod API endpoint open to the internet',
      (c: EnvironmentConfig) => (c.cluster.publicAccessCidrs = ['203.0.113.0/24', '0.0.0.0/0']),
      /'cluster\.publicAccessCidrs\.1' \("0\.0\.0\.0\/0"\) opens the prod API endpoint to the whole internet/,
    ],
    [
      'a malformed endpoint CIDR',
      (c: EnvironmentConfig) => (c.cluster.publicAccessCidrs = ['203.0.113.0']),
      /'cluster\.publicAccessCidrs\.0' \("203\.0\.113\.0"\) must be an IPv4 CIDR/,
    ],
    [
      'two cells with one id',
      (c: EnvironmentConfig) =>
        (c.cells = [
          { id: 'cell-1', capacity: 10 },
          { id: 'cell-1', capacity: 20, database: 'other' },
        ]),
      /'cells\.1\.id' \("cell-1"\) repeats cells\[0\]/,
    ],
    [
      'a cell without room',
      (c: EnvironmentConfig) => (c.cells = [{ id: 'cell-1', capacity: 0 }]),
      /'cells\.0\.capacity' \(0\)/,
    ],
    [
      'AZs of another region',
      (c: EnvironmentConfig) => (c.region = 'eu-west-1'),
      /'availabilityZones\.0' \("us-east-1a"\) is not in region eu-west-1/,
    ],
  ])('%s', (_name, change, message) => {
    let error: unknown;
    try {
      parseEnvironmentConfig(prodWith(change), "environment 'prod'");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });
});

describe('deploy target', () => {
  test('context wins over the credentials, which win over the config', () => {
    const context: Record<string, string> = { account: '111122223333' };
    const target = deployTargetFrom((k) => context[k], {
      CDK_DEFAULT_ACCOUNT: '999988887777',
      CDK_DEFAULT_REGION: 'eu-west-1',
    });
    expect(target).toEqual({ account: '111122223333', region: 'eu-west-1' });
    expect(deployTargetFrom(() => undefined, {})).toEqual({});
  });

  test('lists in context are comma-separated', () => {
    const context: Record<string, string> = {
      adminPrincipalArns: 'arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:role/b',
      publicAccessCidrs: '198.51.100.7/32',
      availabilityZones: 'ap-south-1a,ap-south-1b,ap-south-1c',
    };
    expect(deployTargetFrom((k) => context[k], {})).toEqual({
      adminPrincipalArns: ['arn:aws:iam::111122223333:role/a', 'arn:aws:iam::111122223333:role/b'],
      publicAccessCidrs: ['198.51.100.7/32'],
      availabilityZones: ['ap-south-1a', 'ap-south-1b', 'ap-south-1c'],
    });
  });

  test('the shipped configs use the documented placeholder account', () => {
    for (const env of ['dev', 'staging', 'prod'] as const) {
      expect(loadEnvironmentConfig(env).account).toBe(PLACEHOLDER_ACCOUNT);
    }
  });

  test('another known region gets its AZs, as many as the config names', () => {
    const dev = loadEnvironmentConfig('dev', { region: 'eu-west-1' });
    expect(dev.availabilityZones).toEqual(['eu-west-1a', 'eu-west-1b']);
  });

  test('an unknown region without AZs fails in one line that says how to give them', () => {
    expect(() => loadEnvironmentConfig('prod', { region: 'ap-south-2' })).toThrow(
      /^'availabilityZones' \(missing\) has no entry for region ap-south-2: pass -c availabilityZones=ap-south-2a,/,
    );
    const given = loadEnvironmentConfig('prod', {
      region: 'ap-south-2',
      availabilityZones: ['ap-south-2a', 'ap-south-2b', 'ap-south-2c'],
    });
    expect(given.availabilityZones).toEqual(['ap-south-2a', 'ap-south-2b', 'ap-south-2c']);
  });

  test('a malformed account from context names the field', () => {
    expect(() => loadEnvironmentConfig('prod', { account: '1234' })).toThrow(
      "invalid environment 'prod': 'account' (\"1234\") must be a 12-digit AWS account id",
    );
  });
});

describe('bin/app.ts', () => {
  const outdir = mkdtempSync(path.join(tmpdir(), 'agent-platform-app-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  test('exits 1 with the one-line config error for an unknown environment', async () => {
    // The CDK CLI hands context to the app through CDK_CONTEXT_JSON; this is what `cdk synth -c env=qa` runs.
    const result = await run('npx', ['tsx', 'bin/app.ts'], {
      cwd: ROOT,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ env: 'qa' }), CDK_OUTDIR: outdir },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn'));
    expect(lines).toEqual(["unknown environment 'qa': expected one of dev, staging, prod"]);
  });

  test('refuses the placeholder account in one line when credentials name a real one', async () => {
    const result = await run('npx', ['tsx', 'bin/app.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        CDK_CONTEXT_JSON: JSON.stringify({ env: 'prod', account: PLACEHOLDER_ACCOUNT }),
        CDK_DEFAULT_ACCOUNT: '111122223333',
        CDK_OUTDIR: outdir,
      },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn'));
    expect(lines).toEqual([
      "'account' (123456789012) is the offline placeholder: deploy with -c account=<your 12-digit account id>",
    ]);
  });
});

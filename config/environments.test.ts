import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import {
  ConfigError,
  ENVIRONMENTS,
  type EnvironmentConfig,
  loadEnvironmentConfig,
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
});

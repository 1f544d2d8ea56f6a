import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { EnvironmentConfig } from '../config/environments.ts';
import { secretNames } from '../config/names.ts';
import { MonitorsError } from './errors.ts';

/** Where the Uptime API token came from, for the summary line (never the token itself). */
export interface ApiToken {
  readonly token: string;
  readonly source: string;
}

/**
 * The BetterStack Uptime API token: BETTERSTACK_API_TOKEN, else the environment's secret
 * (`agent-platform/<env>/betterstack/api-token`, a plain string). Without either it fails in one line
 * before any BetterStack call, so nothing is changed.
 */
export async function resolveApiToken(config: EnvironmentConfig, env: NodeJS.ProcessEnv): Promise<ApiToken> {
  const fromEnv = env.BETTERSTACK_API_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: 'BETTERSTACK_API_TOKEN' };
  const secretId = secretNames(config).betterStackApiToken;
  const client = new SecretsManagerClient({ region: config.region, maxAttempts: 2 });
  try {
    const value = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    const token = value.SecretString?.trim();
    if (!token) throw new MonitorsError(`no BetterStack token: secret ${secretId} has no string value`);
    return { token, source: `Secrets Manager ${secretId}` };
  } catch (error) {
    if (error instanceof MonitorsError) throw error;
    const why =
      (error as { name?: string }).name === 'ResourceNotFoundException'
        ? 'does not exist'
        : `could not be read (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
    throw new MonitorsError(
      `no BetterStack token: BETTERSTACK_API_TOKEN is unset and secret ${secretId} ${why}`,
    );
  } finally {
    client.destroy();
  }
}

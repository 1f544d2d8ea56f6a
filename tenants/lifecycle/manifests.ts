import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type EnvironmentConfig, tenantHostname } from '../../config/environments.ts';
import { renderTenantManifests } from '../../constructs/tenant-namespace.ts';
import type { Tier } from '../tiers.ts';

/** Where `<id>.yaml` is written unless a command says otherwise. */
export const DEFAULT_MANIFESTS_DIR = path.join('out', 'manifests');

/** The tenant's manifests file. */
export function manifestsPath(dir: string | undefined, tenantId: string): string {
  return path.join(dir ?? DEFAULT_MANIFESTS_DIR, `${tenantId}.yaml`);
}

/**
 * The tenant's chart, rendered with the same props by every operation, so lifting a limit restores the
 * provisioned file byte for byte. `stopWork` sets pods and jobs to 0 (limited, suspended).
 */
export function renderTenantYaml(
  env: EnvironmentConfig,
  tenantId: string,
  tier: Tier,
  stopWork = false,
): string {
  return renderTenantManifests({
    tenantId,
    tier,
    hostname: tenantHostname(env, tenantId),
    privateNetworkCidr: env.network.cidr,
    ...(stopWork ? { quotaOverride: { pods: 0, jobs: 0 } } : {}),
  });
}

export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Writes the file, making its directory only when missing (one mkdir per directory, not per tenant). */
export async function writeCreatingDir(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}

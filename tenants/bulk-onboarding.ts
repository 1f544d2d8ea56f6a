import { DatabaseUnavailableError } from './errors.ts';
import { expectedFailure, formatTable } from './format.ts';
import { type FleetProgress, forEachConcurrently } from './lifecycle/fleet.ts';
import { stepLines } from './lifecycle/steps.ts';
import { type CreateTenantResult, createTenant, type ProvisionerDeps } from './provisioner.ts';
import { parseTenantId } from './tenant-id.ts';
import { getTier } from './tiers.ts';

/** Tenants onboarded at once by default: what the onboarding benchmark measures. */
export const DEFAULT_BULK_CONCURRENCY = 4;

/** A tenant list that cannot be used as a whole; nothing was created. */
export class TenantListError extends Error {
  override readonly name = 'TenantListError';
}

export interface TenantListEntry {
  readonly id: string;
  readonly tier: string;
  /** Where the entry is in the file, for messages: `line 3` or `entry 3`. */
  readonly where: string;
}

function entryError(source: string, where: string, error: unknown): TenantListError {
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new TenantListError(`${source} ${where}: ${reason}`);
}

function rawEntries(text: string, source: string): { id: unknown; tier: unknown; where: string }[] {
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw entryError(source, 'is not valid JSON:', error);
    }
    if (!Array.isArray(parsed)) throw new TenantListError(`${source}: expected an array of { id, tier }`);
    return parsed.map((entry, i) => {
      const where = `entry ${i + 1}`;
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        throw new TenantListError(`${source} ${where}: expected an object { id, tier }`);
      const { id, tier, ...rest } = entry as Record<string, unknown>;
      const unknown = Object.keys(rest);
      if (unknown.length > 0)
        throw new TenantListError(`${source} ${where}: unknown field '${unknown[0]}' (expected id and tier)`);
      return { id, tier, where };
    });
  }
  const entries: { id: unknown; tier: unknown; where: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(',').map((f) => f.trim());
    // A header row is allowed, once, as the first entry.
    if (entries.length === 0 && fields[0] === 'id' && fields[1] === 'tier' && fields.length === 2) return;
    if (fields.length !== 2)
      throw new TenantListError(`${source} line ${i + 1}: expected 'id,tier', got '${line}'`);
    entries.push({ id: fields[0], tier: fields[1], where: `line ${i + 1}` });
  });
  return entries;
}

/**
 * Reads a tenant list: CSV lines `id,tier` (an `id,tier` header, blank lines and `#` comments allowed) or a
 * JSON array of `{ "id": …, "tier": … }`. Every entry is checked before anything is created: a bad id, an
 * unknown tier or an id listed twice fails the whole list in one line that names the entry.
 */
export function parseTenantList(text: string, source: string): TenantListEntry[] {
  const seen = new Map<string, string>();
  const entries = rawEntries(text, source).map(({ id, tier, where }) => {
    let parsedId: string;
    try {
      parsedId = parseTenantId(typeof id === 'string' ? id : String(id));
      getTier(typeof tier === 'string' ? tier : String(tier));
    } catch (error) {
      throw entryError(source, where, error);
    }
    const first = seen.get(parsedId);
    if (first !== undefined)
      throw new TenantListError(
        `${source} ${where}: tenant '${parsedId}' is listed twice (first at ${first})`,
      );
    seen.set(parsedId, where);
    return { id: parsedId, tier: tier as string, where };
  });
  if (entries.length === 0) throw new TenantListError(`${source} lists no tenants`);
  return entries;
}

export interface BulkTenantResult {
  readonly id: string;
  readonly tier: string;
  readonly cellId: string | null;
  readonly status: string | null;
  readonly changed: boolean;
  /** Present only when this run issued the key: shown once, never stored in clear. */
  readonly apiKey?: { readonly key: string; readonly prefix: string };
  /** The planned changes, one line per change (dry run only). */
  readonly planned?: string[];
}

export interface BulkFailure {
  readonly id: string;
  readonly tier: string;
  readonly error: string;
}

export interface BulkOnboardingResult {
  readonly dryRun: boolean;
  readonly total: number;
  readonly onboarded: BulkTenantResult[];
  readonly failed: BulkFailure[];
  readonly ms: number;
}

function summarize(entry: TenantListEntry, result: CreateTenantResult): BulkTenantResult {
  return {
    id: entry.id,
    tier: entry.tier,
    cellId: result.tenant?.cellId ?? null,
    status: result.tenant?.status ?? null,
    changed: result.changed,
    ...(result.apiKey ? { apiKey: result.apiKey } : {}),
    ...(result.dryRun ? { planned: stepLines(result.steps) } : {}),
  };
}

/**
 * Creates (or converges) every tenant of the list, `concurrency` at a time, each through the same
 * idempotent, per-tenant-locked provisioning as `tenant create`. A tenant that fails is reported with its
 * error and stays as its own run left it (a rerun resumes it); the others go on. An unreachable catalog
 * ends the run at once, since no other tenant could succeed.
 */
export async function createTenants(
  deps: ProvisionerDeps,
  entries: readonly TenantListEntry[],
  options: {
    readonly actor: string;
    /** @default DEFAULT_BULK_CONCURRENCY */
    readonly concurrency?: number;
    readonly dryRun?: boolean;
    readonly onProgress?: (progress: FleetProgress) => void;
  },
): Promise<BulkOnboardingResult> {
  const started = performance.now();
  const dryRun = options.dryRun ?? false;
  const outcomes: (BulkTenantResult | BulkFailure)[] = new Array(entries.length);
  let done = 0;
  let failed = 0;
  await forEachConcurrently(
    entries,
    options.concurrency ?? DEFAULT_BULK_CONCURRENCY,
    async (entry, index) => {
      try {
        const result = await createTenant(deps, {
          id: entry.id,
          tier: entry.tier,
          actor: options.actor,
          dryRun,
        });
        outcomes[index] = summarize(entry, result);
      } catch (error) {
        // Thrown on: it stops the run.
        if (error instanceof DatabaseUnavailableError) throw error;
        const message = expectedFailure(error) ?? (error instanceof Error ? error.message : String(error));
        outcomes[index] = { id: entry.id, tier: entry.tier, error: message };
        failed++;
      }
      done++;
      options.onProgress?.({ done, failed, total: entries.length });
    },
  );
  return {
    dryRun,
    total: entries.length,
    onboarded: outcomes.filter((o): o is BulkTenantResult => !('error' in o)),
    failed: outcomes.filter((o): o is BulkFailure => 'error' in o),
    ms: Math.round(performance.now() - started),
  };
}

export function formatBulkResult(result: BulkOnboardingResult): string {
  const seconds = result.ms / 1000;
  const lines: string[] = [];
  if (result.dryRun) {
    const changing = result.onboarded.filter((t) => (t.planned ?? []).length > 0);
    lines.push(
      `plan for ${result.total} tenants (dry run, nothing changed): ${changing.length} would change, ${result.onboarded.length - changing.length} in sync, ${result.failed.length} refused`,
    );
    for (const t of changing) lines.push(`  ${t.id}: ${t.planned!.join('; ')}`);
  } else {
    const changed = result.onboarded.filter((t) => t.changed).length;
    lines.push(
      `onboarded ${result.onboarded.length} of ${result.total} tenants in ${seconds.toFixed(1)} s (${(result.onboarded.length / Math.max(seconds, 0.001)).toFixed(1)}/s): ${changed} changed, ${result.onboarded.length - changed} already in sync, ${result.failed.length} failed`,
    );
    const withKeys = result.onboarded.filter((t) => t.apiKey);
    if (withKeys.length > 0) {
      lines.push('api keys (shown once, store them now):');
      lines.push(
        formatTable([
          ['tenant', 'tier', 'cell', 'api key'],
          ...withKeys.map((t) => [t.id, t.tier, t.cellId ?? '', t.apiKey!.key]),
        ]),
      );
    }
  }
  if (result.failed.length > 0) {
    lines.push('failed (rerun the same list to resume them):');
    for (const f of result.failed) lines.push(`  ${f.id}: ${f.error}`);
  }
  return lines.join('\n');
}

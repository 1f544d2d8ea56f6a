import type { MigrationResult } from './fan-out.ts';

/** The run in a few lines: what was behind, what ran, and each failing tenant with its error. */
export function formatMigrationResult(result: MigrationResult): string {
  const behind = Object.entries(result.behindByVersion)
    .map(([version, count]) => `${count} at version ${version}`)
    .join(', ');
  if (!behind) return `nothing to do: every tenant is at version ${result.target} or later`;
  const files = `files: ${result.files.join(', ')}`;
  if (result.dryRun) {
    return [
      `plan to version ${result.target} (dry run, files checked, nothing changed): ${behind}`,
      files,
    ].join('\n');
  }
  const seconds = (result.ms / 1000).toFixed(1);
  return [
    `version ${result.target}: ${result.migrated} migrated, ${result.skipped} already done, ${result.failed.length} failed in ${seconds} s (behind: ${behind})`,
    files,
    ...result.failed.map(
      (f) => `  failed ${f.tenantId} (cell ${f.cellId}, stays at version ${f.version}): ${f.error}`,
    ),
    ...(result.failed.length > 0
      ? ['rerun `tenant migrate` once the cause is fixed; it takes up only the tenants still behind']
      : []),
  ].join('\n');
}

import { formatTable } from '../tenants/format.ts';
import type { ExportResult } from './export.ts';
import type { ReconcileResult } from './reconcile.ts';
import type { SetupResult } from './setup.ts';

export function formatSetup(result: SetupResult): string {
  const head = result.dryRun
    ? `billing setup for ${result.env} (dry run, nothing changed):`
    : `billing setup for ${result.env}:`;
  if (result.changes.length === 0) return `${head} in sync, nothing to change`;
  return [head, ...result.changes.map((c) => `  ${c}`)].join('\n');
}

export function formatExport(result: ExportResult): string {
  const verb = result.dryRun ? 'would send' : 'sent';
  const lines = [
    `billing export ${result.since} .. ${result.until}${result.dryRun ? ' (dry run, nothing sent)' : ` (run ${result.runId})`}: ` +
      `${verb} ${result.events} bucket(s), ${result.corrections} correction(s), ${result.replays} replay(s) ` +
      `for ${result.tenantsTotal} tenant(s) in ${result.batches} batch(es), ${result.requests} Stripe request(s)`,
    ...result.problems.map((p) => `  ${p.kind}: ${p.message}`),
  ];
  return lines.join('\n');
}

export function formatReconcile(result: ReconcileResult): string {
  const head =
    `billing reconcile ${result.month} (${result.from} .. ${result.to}, tolerance ${result.tolerance}): ` +
    `${result.compared} tenant-meter total(s) compared, ${result.differences.length} difference(s), ` +
    `${result.overTolerance} past tolerance${result.notified ? ', alarm topic notified' : ''}`;
  const problems = result.problems.map((p) => `  stripe: ${p}`);
  if (result.differences.length === 0) return [head, ...problems].join('\n');
  return [
    head,
    ...problems,
    formatTable([
      ['tenant', 'meter', 'ours', 'stripe', 'difference', 'past tolerance'],
      ...result.differences.map((d) => [
        d.tenantId,
        d.meter,
        d.ours,
        d.stripe ?? 'no customer',
        d.difference,
        d.overTolerance ? 'yes' : 'no',
      ]),
    ]),
  ].join('\n');
}

import { formatTable } from '../format.ts';
import type { GuardPlan } from './plan.ts';

const usd = (n: number | null) => (n === null ? '-' : `$${n.toFixed(2)}`);
const pct = (n: number | null) => (n === null ? '-' : `${(n * 100).toFixed(0)}%`);

/**
 * The plan for people: the header, then only the tenants with something to do, held, or needing a
 * human (10,000 unchanged tenants would hide the few that matter); `all` lists every tenant.
 */
export function formatPlan(plan: GuardPlan, options: { mode: string; runId: number; all?: boolean }): string {
  const lines = [
    `cost guard run ${options.runId} (${options.mode}) for ${plan.period} at ${plan.now}`,
    `Cost Explorer: ${plan.ceRequests} request(s), $${(plan.ceRequests * 0.01).toFixed(2)}; untagged cost ${usd(plan.untaggedUsd)}`,
  ];
  if (plan.dataProblem) lines.push(`cost data UNKNOWN (${plan.dataProblem}): every state kept, nothing done`);
  lines.push(`action cap ${plan.cap.limit}: ${plan.cap.used} used, ${plan.cap.held} held`);
  const shown = plan.tenants.filter(
    (t) =>
      options.all || t.actions.length > 0 || t.needsHuman || (t.hold !== null && t.hold !== 'unknown-data'),
  );
  const counts = new Map<string, number>();
  for (const t of plan.tenants) counts.set(t.to, (counts.get(t.to) ?? 0) + 1);
  lines.push(
    `${plan.tenants.length} tenant(s): ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ') || 'none'}`,
  );
  if (shown.length === 0) return [...lines, 'nothing to do'].join('\n');
  const rows = [
    [
      'tenant',
      'tier',
      'metered',
      'billed',
      'budget',
      'meter',
      'bill',
      'from',
      'to',
      'actions',
      'hold',
      'reason',
    ],
    ...shown.map((t) => [
      t.tenantId,
      t.tier,
      usd(t.meteredUsd),
      usd(t.billedUsd),
      usd(t.budgetUsd),
      pct(t.meterRatio),
      pct(t.billRatio),
      t.from,
      t.to,
      t.actions.join('+') || '-',
      t.hold ?? '-',
      t.reason,
    ]),
  ];
  return [...lines, '', formatTable(rows)].join('\n');
}

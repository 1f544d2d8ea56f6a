import type pg from 'pg';
import { billableUsageByHour } from '../metering/billable-usage.ts';
import { meteredCostUsd } from '../tiers.ts';
import { limitReachedOn, monthProgress, projectMonthEndUsd } from './projection.ts';

export interface ProjectionPoint {
  /** UTC day, YYYY-MM-DD. */
  readonly day: string;
  /** Metered cost of the month up to the end of that day (the run's own figure on the run's day). */
  readonly spentUsd: number;
  /** Month-end cost projected from it (projection.ts, the guard's burn-rate rule). */
  readonly projectedUsd: number;
}

export interface ProjectionTrend {
  readonly tenantId: string;
  readonly budgetUsd: number;
  /** One point per day of the period up to the run, oldest first. */
  readonly points: ProjectionPoint[];
  /** The day the budget is reached at the run's rate; null when not this month. */
  readonly limitReachedOn: string | null;
}

const DAY_MS = 86_400_000;
const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * How each tenant's month-end projection moved over the period: for every day before the run, the
 * metered cost to the end of that day (the catalog's billable hours, tenants/metering) projected to the
 * month end; the last point is the run's own figure at the run's time, so the chart ends where the table does.
 */
export async function projectionTrends(
  pool: pg.Pool,
  runAt: Date,
  tenants: readonly { readonly tenantId: string; readonly meteredUsd: number; readonly budgetUsd: number }[],
): Promise<ProjectionTrend[]> {
  const { start } = monthProgress(runAt);
  const runDay = runAt.toISOString().slice(0, 10);
  // Billable hours (the larger of reported and leased per hour), the figure the guard itself judges.
  const hours =
    Date.parse(`${runDay}T00:00:00Z`) > start.getTime()
      ? await billableUsageByHour(pool, {
          from: start,
          to: new Date(`${runDay}T00:00:00Z`),
          tenantIds: tenants.map((t) => t.tenantId),
        })
      : [];
  const daily = new Map<string, { agentMinutes: number; apiCalls: number }>();
  for (const h of hours) {
    const key = `${h.tenantId} ${h.hour.slice(0, 10)}`;
    const day = daily.get(key) ?? { agentMinutes: 0, apiCalls: 0 };
    daily.set(key, { agentMinutes: day.agentMinutes + h.agentMinutes, apiCalls: day.apiCalls + h.apiCalls });
  }
  const days: string[] = [];
  for (let t = start.getTime(); t < Date.parse(`${runDay}T00:00:00Z`); t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return tenants.map((tenant) => {
    let agentMinutes = 0;
    let apiCalls = 0;
    const points = days.map((day) => {
      const used = daily.get(`${tenant.tenantId} ${day}`);
      agentMinutes += used?.agentMinutes ?? 0;
      apiCalls += used?.apiCalls ?? 0;
      const spentUsd = meteredCostUsd({ agentMinutes, apiCalls });
      const endOfDay = new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS);
      return {
        day,
        spentUsd: round2(spentUsd),
        projectedUsd: round2(projectMonthEndUsd(spentUsd, endOfDay)),
      };
    });
    points.push({
      day: runDay,
      spentUsd: round2(tenant.meteredUsd),
      projectedUsd: round2(projectMonthEndUsd(tenant.meteredUsd, runAt)),
    });
    return {
      tenantId: tenant.tenantId,
      budgetUsd: tenant.budgetUsd,
      points,
      limitReachedOn: limitReachedOn(tenant.meteredUsd, tenant.budgetUsd, runAt),
    };
  });
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const money = (n: number) => `$${n.toFixed(2)}`;

/**
 * A small line of the projected month-end cost per day against the dashed budget line, red once the
 * projection is over budget; inline SVG with a title per point, no assets, as the report's other chart.
 */
export function projectionTrendSvg(trend: ProjectionTrend): string {
  const width = 180;
  const height = 40;
  const pad = 3;
  const last = trend.points.at(-1);
  const max = Math.max(trend.budgetUsd * 1.1, ...trend.points.map((p) => p.projectedUsd), 0.01);
  const step = (width - 2 * pad) / Math.max(1, trend.points.length - 1);
  const x = (i: number) => (pad + i * step).toFixed(1);
  const y = (usd: number) => (height - pad - (usd / max) * (height - 2 * pad)).toFixed(1);
  const over = last !== undefined && last.projectedUsd >= trend.budgetUsd;
  const colour = over ? '#c62828' : '#1565c0';
  const line = trend.points.map((p, i) => `${x(i)},${y(p.projectedUsd)}`).join(' ');
  const dots = trend.points.map(
    (p, i) =>
      `<circle cx="${x(i)}" cy="${y(p.projectedUsd)}" r="1.6" fill="${colour}">` +
      `<title>${escapeHtml(`${p.day}: spent ${money(p.spentUsd)}, projected ${money(p.projectedUsd)}`)}</title></circle>`,
  );
  const label =
    `projected month-end cost of ${trend.tenantId} by day` +
    (last === undefined ? '' : `: ${money(last.projectedUsd)} on ${last.day}`) +
    `, budget ${money(trend.budgetUsd)}`;
  const budgetY = y(trend.budgetUsd);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" ` +
    `aria-label="${escapeHtml(label)}" font-family="sans-serif">` +
    `<line x1="0" y1="${budgetY}" x2="${width}" y2="${budgetY}" stroke="#333" stroke-dasharray="3,3"/>` +
    `<polyline points="${line}" fill="none" stroke="${colour}" stroke-width="1.5"/>${dots.join('')}</svg>`
  );
}

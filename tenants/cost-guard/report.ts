import { type SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import type pg from 'pg';
import type { EnvironmentConfig } from '../../config/environments.ts';
import { costReportSender } from '../../config/names.ts';
import { BUDGET_LINES } from '../budget-lines.ts';
import { formatTable } from '../format.ts';
import { getTier, TIER_NAMES } from '../tiers.ts';
import { CE_REQUEST_COST_USD } from './costs.ts';
import { GuardRunError, loadRun } from './inputs.ts';
import { type GuardPlan, planRun } from './plan.ts';
import { type ProjectionTrend, projectionTrendSvg, projectionTrends } from './trend.ts';

export interface TenantLine {
  readonly tenantId: string;
  readonly tier: string;
  readonly status: string;
  readonly state: string;
  readonly billedUsd: number | null;
  readonly meteredUsd: number;
  readonly agentMinutes: number;
  readonly apiCalls: number;
  readonly budgetUsd: number;
  /** The larger of metering and billing, as a fraction of the budget. */
  readonly budgetUsed: number;
}

export interface TierLine {
  readonly tier: string;
  readonly tenants: number;
  /** Invoiced revenue where Stripe has it (billing reconcile records it), the tier's list price otherwise. */
  readonly revenueUsd: number;
  /** Where the revenue comes from: every tenant invoiced, none, or some. */
  readonly revenueSource: 'stripe' | 'list price' | 'mixed';
  /** Billed cost where Cost Explorer has it, metered cost otherwise. */
  readonly costUsd: number;
  /** (revenue - cost) / revenue; null for a tier without revenue. */
  readonly margin: number | null;
}

export interface CostReport {
  readonly env: string;
  readonly period: string;
  readonly runId: number;
  readonly runAt: string;
  readonly dataProblem: string | null;
  readonly untaggedUsd: number;
  readonly tenants: TenantLine[];
  readonly tiers: TierLine[];
  /** The guard's own Cost Explorer use this period, every run and retry counted. */
  readonly guard: { readonly runs: number; readonly ceRequests: number; readonly ceCostUsd: number };
  /** The month-end projection of the tenants the report lists, with its daily trend (trend.ts). */
  readonly projections: ProjectionTrend[];
}

const round2 = (n: number) => Math.round(n * 100) / 100;

function tenantLines(
  plan: GuardPlan,
  usage: Map<string, { agentMinutes: number; apiCalls: number }>,
): TenantLine[] {
  return plan.tenants
    .map((t) => ({
      tenantId: t.tenantId,
      tier: t.tier,
      status: t.status,
      state: t.to,
      billedUsd: t.billedUsd,
      meteredUsd: t.meteredUsd,
      agentMinutes: usage.get(t.tenantId)?.agentMinutes ?? 0,
      apiCalls: usage.get(t.tenantId)?.apiCalls ?? 0,
      budgetUsd: t.budgetUsd,
      budgetUsed: Math.max(t.meterRatio, t.billRatio ?? 0),
    }))
    .sort((a, b) => b.budgetUsed - a.budgetUsed || a.tenantId.localeCompare(b.tenantId));
}

function tierLines(tenants: readonly TenantLine[], invoiced: ReadonlyMap<string, number>): TierLine[] {
  return TIER_NAMES.map((name) => {
    const members = tenants.filter((t) => t.tier === name);
    const list = getTier(name).priceUsdMonthly;
    const revenueUsd = round2(members.reduce((sum, t) => sum + (invoiced.get(t.tenantId) ?? list), 0));
    const billed = members.filter((t) => invoiced.has(t.tenantId)).length;
    const revenueSource =
      billed > 0 && billed === members.length ? 'stripe' : billed === 0 ? 'list price' : 'mixed';
    const costUsd = round2(members.reduce((sum, t) => sum + (t.billedUsd ?? t.meteredUsd), 0));
    return {
      tier: name,
      tenants: members.length,
      revenueUsd,
      revenueSource,
      costUsd,
      margin: revenueUsd > 0 ? (revenueUsd - costUsd) / revenueUsd : null,
    };
  });
}

/** Invoiced revenue per tenant for the period, as billing reconcile recorded it from Stripe. */
async function invoicedRevenue(pool: pg.Pool, period: string): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ tenant_id: string; usd: number }>(
    'SELECT tenant_id, amount_usd::float8 AS usd FROM control.billing_revenue WHERE period = $1',
    [period],
  );
  return new Map(rows.map((r) => [r.tenant_id, r.usd]));
}

/**
 * The report of a stored run (default: the latest of the current period): it reads the catalog
 * only and sends no Cost Explorer request.
 */
export async function buildCostReport(
  pool: pg.Pool,
  env: EnvironmentConfig,
  options: { runId?: number } = {},
): Promise<CostReport> {
  let runId = options.runId;
  if (runId === undefined) {
    const { rows } = await pool.query<{ id: string }>(
      'SELECT id FROM control.cost_guard_runs ORDER BY started_at DESC, id DESC LIMIT 1',
    );
    if (!rows[0]) throw new GuardRunError('no cost guard run is stored yet: run `npm run cost-guard` first');
    runId = Number(rows[0].id);
  }
  const { inputs } = await loadRun(pool, runId);
  const plan = planRun(inputs);
  const usage = new Map(
    inputs.tenants.map((t) => [t.id, { agentMinutes: t.agentMinutes, apiCalls: t.apiCalls }]),
  );
  const tenants = tenantLines(plan, usage);
  const { rows } = await pool.query<{ runs: number; requests: number }>(
    'SELECT count(*)::int AS runs, coalesce(sum(ce_requests), 0)::int AS requests FROM control.cost_guard_runs WHERE period = $1',
    [inputs.period],
  );
  const guard = rows[0]!;
  return {
    env: env.name,
    period: inputs.period,
    runId,
    runAt: inputs.now,
    dataProblem: plan.dataProblem,
    untaggedUsd: plan.untaggedUsd,
    tenants,
    tiers: tierLines(tenants, await invoicedRevenue(pool, inputs.period)),
    guard: {
      runs: guard.runs,
      ceRequests: guard.requests,
      ceCostUsd: round2(guard.requests * CE_REQUEST_COST_USD),
    },
    projections: await projectionTrends(pool, new Date(inputs.now), tenants.slice(0, REPORT_TOP_TENANTS)),
  };
}

const money = (n: number | null) => (n === null ? '-' : `$${n.toFixed(2)}`);
const percent = (n: number | null) => (n === null ? '-' : `${(n * 100).toFixed(1)}%`);

/** Tenants drawn in the chart and listed in the e-mail: the ones closest to (or over) their budget. */
export const REPORT_TOP_TENANTS = 25;

const TIER_HEADER = ['tier', 'tenants', 'revenue', 'revenue from', 'cost', 'margin'];
const TENANT_HEADER = [
  'tenant',
  'tier',
  'cost',
  'metered',
  'agent-min',
  'api calls',
  'budget',
  'used',
  'state',
  'status',
];

/** One table row each, shared by the text and HTML versions so they never disagree. */
const tierCells = (t: TierLine) => [
  t.tier,
  String(t.tenants),
  money(t.revenueUsd),
  t.revenueSource,
  money(t.costUsd),
  percent(t.margin),
];
const tenantCells = (t: TenantLine) => [
  t.tenantId,
  t.tier,
  money(t.billedUsd),
  money(t.meteredUsd),
  String(t.agentMinutes),
  String(t.apiCalls),
  money(t.budgetUsd),
  percent(t.budgetUsed),
  t.state,
  t.status,
];

const PROJECTION_HEADER = ['tenant', 'spent', 'projected', 'budget', 'budget reached'];
const projectionCells = (p: ProjectionTrend) => {
  const last = p.points.at(-1);
  return [
    p.tenantId,
    money(last?.spentUsd ?? 0),
    money(last?.projectedUsd ?? 0),
    money(p.budgetUsd),
    p.limitReachedOn ?? '-',
  ];
};

export function renderCostReportText(report: CostReport): string {
  const shown = report.tenants.slice(0, REPORT_TOP_TENANTS);
  return [
    `Cost report ${report.env} ${report.period} (run ${report.runId} at ${report.runAt})`,
    ...(report.dataProblem ? [`Cost data UNKNOWN: ${report.dataProblem}`] : []),
    '',
    'Per tier',
    formatTable([TIER_HEADER, ...report.tiers.map(tierCells)]),
    '',
    `Per tenant (${shown.length} of ${report.tenants.length}, most of budget used first)`,
    formatTable([TENANT_HEADER, ...shown.map(tenantCells)]),
    '',
    'Projected month end (metered, at the rate so far)',
    formatTable([PROJECTION_HEADER, ...report.projections.map(projectionCells)]),
    '',
    `Untagged cost: ${money(report.untaggedUsd)}`,
    `Cost guard: ${report.guard.runs} run(s), ${report.guard.ceRequests} Cost Explorer request(s), ${money(report.guard.ceCostUsd)}`,
  ].join('\n');
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STATE_COLOURS: Record<string, string> = {
  ok: '#2e7d32',
  warning: '#f9a825',
  limited: '#ef6c00',
  suspended: '#c62828',
};

/** Horizontal bars of budget used per tenant, with the 90%, 100% and 200% lines; inline SVG, no assets. */
export function budgetChartSvg(tenants: readonly TenantLine[]): string {
  const rowHeight = 18;
  const labelWidth = 170;
  const plotWidth = 420;
  const maxRatio = Math.max(2.5, ...tenants.map((t) => t.budgetUsed));
  const x = (ratio: number) => labelWidth + (Math.min(ratio, maxRatio) / maxRatio) * plotWidth;
  const height = tenants.length * rowHeight + 30;
  const bars = tenants.map((t, i) => {
    const y = i * rowHeight + 4;
    const colour = STATE_COLOURS[t.state] ?? '#607d8b';
    return (
      `<text x="${labelWidth - 6}" y="${y + 12}" text-anchor="end" font-size="11">${escapeHtml(t.tenantId)}</text>` +
      `<rect x="${labelWidth}" y="${y}" width="${(x(t.budgetUsed) - labelWidth).toFixed(1)}" height="${rowHeight - 5}" fill="${colour}"/>` +
      `<text x="${(x(t.budgetUsed) + 4).toFixed(1)}" y="${y + 12}" font-size="10">${percent(t.budgetUsed)}</text>`
    );
  });
  // The 90% and 100% lines sit close together, so their labels lean away from each other.
  const guideLines = [
    { ratio: BUDGET_LINES.warning, anchor: 'end' },
    { ratio: BUDGET_LINES.limited, anchor: 'start' },
    { ratio: BUDGET_LINES.suspended, anchor: 'middle' },
  ];
  const lines = guideLines.map(({ ratio, anchor }) => {
    const lx = x(ratio).toFixed(1);
    return (
      `<line x1="${lx}" y1="0" x2="${lx}" y2="${height - 16}" stroke="#333" stroke-dasharray="3,3"/>` +
      `<text x="${lx}" y="${height - 4}" text-anchor="${anchor}" font-size="10">${ratio * 100}%</text>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 60}" height="${height}" ` +
    `role="img" aria-label="budget used per tenant" font-family="sans-serif">${bars.join('')}${lines.join('')}</svg>`
  );
}

export function renderCostReportHtml(report: CostReport): string {
  const shown = report.tenants.slice(0, REPORT_TOP_TENANTS);
  const row = (cells: string[], tag = 'td') =>
    `<tr>${cells.map((c) => `<${tag} style="padding:2px 8px;text-align:left">${escapeHtml(c)}</${tag}>`).join('')}</tr>`;
  const tierRows = report.tiers.map((t) => row(tierCells(t)));
  const tenantRows = shown.map((t) => row(tenantCells(t)));
  const trendRow = (p: ProjectionTrend) =>
    `<tr>${projectionCells(p)
      .map((c) => `<td style="padding:2px 8px;text-align:left">${escapeHtml(c)}</td>`)
      .join('')}<td>${projectionTrendSvg(p)}</td></tr>`;
  const title = `Cost report ${report.env} ${report.period}`;
  return [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`,
    '<body style="font-family:sans-serif">',
    `<h1>${escapeHtml(title)}</h1>`,
    `<p>Run ${report.runId} at ${escapeHtml(report.runAt)}.</p>`,
    ...(report.dataProblem
      ? [`<p><strong>Cost data UNKNOWN: ${escapeHtml(report.dataProblem)}</strong></p>`]
      : []),
    '<h2>Budget used (most first)</h2>',
    budgetChartSvg(shown),
    '<h2>Per tier</h2>',
    `<table>${row(TIER_HEADER, 'th')}${tierRows.join('')}</table>`,
    `<h2>Per tenant (${shown.length} of ${report.tenants.length})</h2>`,
    `<table>${row(TENANT_HEADER, 'th')}${tenantRows.join('')}</table>`,
    '<h2>Projected month end (metered, at the rate so far)</h2>',
    `<table>${row([...PROJECTION_HEADER, 'trend'], 'th')}${report.projections.map(trendRow).join('')}</table>`,
    `<p>Untagged cost: ${money(report.untaggedUsd)}. Cost guard: ${report.guard.runs} run(s), ` +
      `${report.guard.ceRequests} Cost Explorer request(s), ${money(report.guard.ceCostUsd)}.</p>`,
    '</body></html>',
  ].join('\n');
}

/** E-mails the report (HTML with the text version as the alternative) to the environment's alert address. */
export async function emailCostReport(
  ses: SESv2Client,
  env: EnvironmentConfig,
  report: CostReport,
): Promise<string> {
  const { MessageId } = await ses.send(
    new SendEmailCommand({
      FromEmailAddress: costReportSender(env),
      Destination: { ToAddresses: [env.alertEmail] },
      Content: {
        Simple: {
          Subject: { Data: `Cost report ${report.env} ${report.period}` },
          Body: {
            Html: { Data: renderCostReportHtml(report) },
            Text: { Data: renderCostReportText(report) },
          },
        },
      },
    }),
  );
  return MessageId ?? '';
}

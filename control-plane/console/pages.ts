import { BUDGET_LINES } from '../../tenants/budget-lines.ts';
import type { UsageStanding } from '../../tenants/cost-guard/projection.ts';
import { budgetChartSvg, type CostReport, REPORT_TOP_TENANTS } from '../../tenants/cost-guard/report.ts';
import { projectionTrendSvg } from '../../tenants/cost-guard/trend.ts';
import { TIER_NAMES } from '../../tenants/tiers.ts';
import type { LiveLease } from '../lease-store.ts';
import type { OperatorRole } from '../operator-auth.ts';
import { dailyBarsSvg } from './charts.ts';
import type { GuardRunRow } from './costs.ts';
import type { Readiness, ScheduledRun, TrafficFigures } from './health.ts';
import { html, type SafeHtml, trusted } from './html.ts';
import type { ApiKeyRow, TenantDetailView } from './tenant-detail.ts';
import { type TENANT_SORTS, TENANT_STATUSES, type TenantPage, type TenantQuery } from './tenants-data.ts';

export const CONSOLE_API = '/console/api';

const money = (n: number | null) => (n === null ? '-' : `$${n.toFixed(2)}`);
const percent = (n: number | null) => (n === null ? '-' : `${(n * 100).toFixed(1)}%`);
// One formatter for the page: toLocaleString builds a new one per call, which dominated rendering time.
const COUNT_FORMAT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const count = (n: number) => COUNT_FORMAT.format(n);
const when = (d: Date | null) => (d === null ? '-' : d.toISOString().replace('T', ' ').slice(0, 19));

/** A labelled meter of used against allowed; the figures are in the text too, not only in the bar. */
export function usageMeter(label: string, used: number, quota: number): SafeHtml {
  return html`<meter min="0" max="${quota}" low="${quota * 0.9}" high="${quota}" optimum="0" value="${Math.min(used, quota)}" aria-label="${label}"></meter> ${count(used)} / ${count(quota)}`;
}

/** Metered cost against the budget: the figure the cost guard acts on. */
export function costMeter(label: string, usd: number, budgetUsd: number): SafeHtml {
  return html`<meter min="0" max="${budgetUsd}" low="${budgetUsd * BUDGET_LINES.warning}" high="${budgetUsd}" optimum="0" value="${Math.min(usd, budgetUsd)}" aria-label="${label}"></meter> ${money(usd)} / ${money(budgetUsd)}`;
}

const seconds = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
};

/**
 * The month so far from GET /v1/usage's figures: quota use (the largest of reported, leased and billable
 * agent-minutes), metered cost against budget and the projected month end.
 */
export function standingTable(standing: UsageStanding, caption: string): SafeHtml {
  const { agentMinutes, apiCalls, cost } = standing;
  return html`<table><caption>${caption}</caption>
<thead><tr><th scope="col">Meter</th><th scope="col">Used / quota</th></tr></thead><tbody>
<tr><th scope="row">Agent-minutes</th><td>${usageMeter('agent-minutes', agentMinutes.used, agentMinutes.quota)} (reported ${count(agentMinutes.reported)}, leased ${count(agentMinutes.leased)}, billable by hour ${count(agentMinutes.billed)}: the largest counts)</td></tr>
<tr><th scope="row">API calls</th><td>${usageMeter('API calls', apiCalls.used, apiCalls.quota)}</td></tr>
<tr><th scope="row">Metered cost / budget</th><td>${costMeter('metered cost', cost.meteredUsd, cost.budgetUsd)}</td></tr>
<tr><th scope="row">Projected month end</th><td>${money(cost.projectedMonthEndUsd)} (${percent(cost.projectedRatio)} of budget)${cost.limitReachedOn === null ? '' : html`; <span class="bad">budget reached on ${cost.limitReachedOn} at this rate</span>`}</td></tr>
</tbody></table>`;
}

/** Running tasks and their leases: when each started, its last heartbeat and when its lease runs out. */
export function leasesTable(
  leases: readonly LiveLease[],
  options: { readonly now: number; readonly concurrentTasks: number; readonly maxTaskMinutes: number },
): SafeHtml {
  return html`<table><caption>Tasks running: ${leases.length} of ${options.concurrentTasks} allowed at once; each stops after ${options.maxTaskMinutes} min</caption>
<thead><tr><th scope="col">Task</th><th scope="col">Started</th><th scope="col">Running for</th><th scope="col">Last heartbeat</th><th scope="col">Lease expires</th></tr></thead>
<tbody>${
    leases.length === 0
      ? html`<tr><td colspan="5">no task running</td></tr>`
      : leases.map(
          (l) =>
            html`<tr><th scope="row"><code>${l.taskId}</code></th><td>${when(new Date(l.startedAt))}</td><td>${seconds(options.now - l.startedAt)}</td><td>${seconds(options.now - l.lastBeatAt)} ago</td><td>${when(new Date(l.expiresAt))} (in ${seconds(l.expiresAt - options.now)})</td></tr>`,
        )
  }</tbody></table>`;
}

function queryString(query: TenantQuery, changes: Partial<TenantQuery>): string {
  const q = { ...query, ...changes };
  const params = new URLSearchParams();
  for (const s of q.status) params.append('status', s);
  for (const t of q.tier) params.append('tier', t);
  params.set('sort', q.sort);
  params.set('order', q.order);
  params.set('page', String(q.page));
  params.set('size', String(q.size));
  return `?${params.toString()}`;
}

export function tenantsPage(data: TenantPage, query: TenantQuery): SafeHtml {
  const pages = Math.max(1, Math.ceil(data.total / query.size));
  const header = (sort: (typeof TENANT_SORTS)[number], label: string) => {
    const active = query.sort === sort;
    const order = active && query.order === 'asc' ? 'desc' : 'asc';
    const ariaSort = active ? (query.order === 'asc' ? 'ascending' : 'descending') : 'none';
    return html`<th scope="col" aria-sort="${ariaSort}"><a href="${queryString(query, { sort, order, page: 1 })}">${label}</a></th>`;
  };
  return html`
<form method="get" class="inline" aria-label="filter tenants">
  <label for="filter-status">Status</label>
  <select id="filter-status" name="status"><option value="">any</option>${TENANT_STATUSES.map(
    (s) => html`<option${query.status.includes(s) ? trusted(' selected') : ''}>${s}</option>`,
  )}</select>
  <label for="filter-tier">Tier</label>
  <select id="filter-tier" name="tier"><option value="">any</option>${TIER_NAMES.map(
    (t) => html`<option${query.tier.includes(t) ? trusted(' selected') : ''}>${t}</option>`,
  )}</select>
  <input type="hidden" name="sort" value="${query.sort}"><input type="hidden" name="order" value="${query.order}">
  <label for="filter-size">Per page</label>
  <select id="filter-size" name="size">${[25, 50, 100, 200].map(
    (n) => html`<option${n === query.size ? trusted(' selected') : ''}>${n}</option>`,
  )}</select>
  <button type="submit">Apply</button>
</form>
<section id="tenants" data-live aria-label="tenants">
<p>${count(data.total)} tenant(s); usage and cost for ${data.period}. Page ${query.page} of ${pages}.</p>
<table>
<caption>Tenants</caption>
<thead><tr>${header('id', 'Tenant')}${header('status', 'Status')}${header('tier', 'Tier')}${header('cell', 'Cell')}
${header('agent-minutes', 'Agent-minutes vs quota')}${header('api-calls', 'API calls vs quota')}
<th scope="col">Metered cost vs budget (month to date)</th><th scope="col">Projected month end</th>${header('guard', 'Cost guard')}</tr></thead>
<tbody>${data.rows.map(
    (r) => html`<tr>
<th scope="row"><a href="/console/tenants/${r.id}">${r.id}</a></th><td>${r.status}</td><td>${r.tier}</td><td>${r.cell}</td>
<td>${usageMeter(`${r.id} agent-minutes`, r.standing.agentMinutes.used, r.standing.agentMinutes.quota)}</td>
<td>${usageMeter(`${r.id} API calls`, r.standing.apiCalls.used, r.standing.apiCalls.quota)}</td>
<td>${costMeter(`${r.id} cost`, r.standing.cost.meteredUsd, r.standing.cost.budgetUsd)}${r.billedUsd === null ? '' : html`<br>billed ${money(r.billedUsd)}`}</td>
<td>${money(r.standing.cost.projectedMonthEndUsd)}${r.standing.cost.limitReachedOn === null ? '' : html`<br><span class="bad">reaches the budget on ${r.standing.cost.limitReachedOn}</span>`}</td><td>${r.guardState}</td></tr>`,
  )}</tbody></table>
<nav aria-label="pages" class="inline">
${query.page > 1 ? html`<a href="${queryString(query, { page: 1 })}">First</a> <a rel="prev" href="${queryString(query, { page: query.page - 1 })}">Previous</a>` : ''}
${query.page < pages ? html`<a rel="next" href="${queryString(query, { page: query.page + 1 })}">Next</a> <a href="${queryString(query, { page: pages })}">Last</a>` : ''}
</nav></section>`;
}

function apiForm(options: {
  method: string;
  path: string;
  label: string;
  done: string;
  readOnly: boolean;
  fields?: SafeHtml;
  secret?: boolean;
}): SafeHtml {
  return html`<form class="inline" data-api="${options.method} ${CONSOLE_API}${options.path}" data-done="${options.done}">
<fieldset${options.readOnly ? trusted(' disabled') : ''}><legend>${options.label}</legend>${options.fields ?? ''}
<button type="submit">${options.label}</button>${options.secret ? trusted(' <output class="secret" aria-live="polite"></output>') : ''}</fieldset></form>`;
}

function keyRow(tenantId: string, key: ApiKeyRow, readOnly: boolean): SafeHtml {
  const active = key.revokedAt === null;
  return html`<tr><th scope="row"><code>${key.prefix}</code></th><td>${when(key.createdAt)}</td><td>${when(key.lastUsedAt)}</td>
<td>${active ? 'active' : `revoked ${when(key.revokedAt)}`}</td><td>${
    active
      ? [
          apiForm({
            method: 'POST',
            path: `/v1/tenants/${tenantId}/api-keys/${key.prefix}/rotate`,
            label: `Rotate ${key.prefix}`,
            done: `key ${key.prefix} rotated`,
            readOnly,
            secret: true,
          }),
          apiForm({
            method: 'DELETE',
            path: `/v1/tenants/${tenantId}/api-keys/${key.prefix}`,
            label: `Revoke ${key.prefix}`,
            done: `key ${key.prefix} revoked`,
            readOnly,
          }),
        ]
      : ''
  }</td></tr>`;
}

const reasonField = (id: string) =>
  html`<label for="${id}">Reason</label> <input id="${id}" name="reason" required maxlength="500">`;

/** The tenant's month and its running tasks, read from the control plane's own stores. */
export interface TenantLiveView {
  readonly standing: UsageStanding;
  readonly leases: readonly LiveLease[];
  readonly now: number;
}

export function tenantDetailPage(view: TenantDetailView, live: TenantLiveView, role: OperatorRole): SafeHtml {
  const t = view.tenant;
  const limits = t.limits;
  const readOnly = role === 'viewer';
  return html`
${readOnly ? html`<p>Signed in as a viewer: you can see everything and change nothing.</p>` : ''}
<section id="summary" data-live aria-label="summary">
<dl><dt>Status</dt><dd>${t.status}</dd><dt>Tier</dt><dd>${t.tier}</dd><dt>Cell</dt><dd>${t.cellId}</dd>
<dt>Cost guard</dt><dd>${view.guardState}</dd><dt>Active API keys</dt><dd>${t.activeApiKeys}</dd></dl>
${standingTable(live.standing, `This month (${live.standing.period}): the figures of GET /v1/tenants/${t.id}/usage`)}
</section>
<h2>Tasks running</h2>
<section id="tasks" data-live aria-label="tasks running">
${leasesTable(live.leases, { now: live.now, concurrentTasks: limits.concurrentTasks, maxTaskMinutes: limits.maxTaskMinutes })}
</section>
<h2>Limits of tier ${limits.name}</h2>
<table><caption>Tier limits</caption><thead><tr><th scope="col">Limit</th><th scope="col">Value</th></tr></thead><tbody>
<tr><th scope="row">Agent-minutes per month</th><td>${count(limits.agentMinutesPerMonth)}</td></tr>
<tr><th scope="row">API calls per month</th><td>${count(limits.apiCallsPerMonth)}</td></tr>
<tr><th scope="row">Requests per second (burst)</th><td>${limits.rateLimit.requestsPerSecond} (+${limits.rateLimit.burst})</td></tr>
<tr><th scope="row">Concurrent tasks</th><td>${limits.concurrentTasks}</td></tr>
<tr><th scope="row">Monthly cost budget</th><td>${money(limits.monthlyCostBudgetUsd)}</td></tr>
<tr><th scope="row">Database connections / statement timeout</th><td>${limits.database.connectionLimit} / ${limits.database.statementTimeoutMs} ms</td></tr>
<tr><th scope="row">Kubernetes pods / jobs</th><td>${limits.kubernetes.pods} / ${limits.kubernetes.jobs}</td></tr>
</tbody></table>
<h2>Actions</h2>
${apiForm({ method: 'POST', path: `/v1/tenants/${t.id}/suspend`, label: 'Suspend', done: 'tenant suspended', readOnly, fields: reasonField('suspend-reason') })}
${apiForm({ method: 'POST', path: `/v1/tenants/${t.id}/resume`, label: 'Resume', done: 'tenant resumed', readOnly, fields: reasonField('resume-reason') })}
${apiForm({
  method: 'PUT',
  path: `/v1/tenants/${t.id}/tier`,
  label: 'Change tier',
  done: 'tier changed',
  readOnly,
  fields: html`<label for="tier-select">Tier</label> <select id="tier-select" name="tier">${TIER_NAMES.map(
    (n) => html`<option${n === t.tier ? trusted(' selected') : ''}>${n}</option>`,
  )}</select> ${reasonField('tier-reason')}`,
})}
<h2>API keys</h2>
${apiForm({ method: 'POST', path: `/v1/tenants/${t.id}/api-keys`, label: 'Issue key', done: 'key issued', readOnly, secret: true })}
<section id="keys" data-live aria-label="API keys">
<table><caption>API keys by prefix</caption><thead><tr><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
<tbody>${view.keys.map((k) => keyRow(t.id, k, readOnly))}</tbody></table></section>
<h2>Usage, last 30 days</h2>
<section id="usage" data-live aria-label="usage">
${trusted(
  dailyBarsSvg(
    view.usage.map((u) => ({ label: u.day, value: u.agentMinutes })),
    { title: 'agent-minutes per day', unit: 'agent-minutes' },
  ),
)}
${trusted(
  dailyBarsSvg(
    view.usage.map((u) => ({ label: u.day, value: u.apiCalls })),
    { title: 'API calls per day', unit: 'API calls' },
  ),
)}
</section>
<h2>Audit trail</h2>
<section id="audit" data-live aria-label="audit trail">
<table><caption>Audit trail, newest first</caption><thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Evidence</th></tr></thead>
<tbody>${view.audit.map(
    (e) => html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td>${e.action}</td>
<td>${e.fromStatus === undefined ? '' : `${e.fromStatus} → ${e.toStatus ?? ''}`}</td><td>${e.reason ?? ''}</td>
<td><code>${e.evidence === undefined ? '' : JSON.stringify(e.evidence).slice(0, 300)}</code></td></tr>`,
  )}</tbody></table></section>`;
}

export function costsPage(report: CostReport | null, runs: readonly GuardRunRow[]): SafeHtml {
  if (report === null)
    return html`<p>No cost-guard run is stored yet: run <code>npm run cost-guard</code> first.</p>`;
  const shown = report.tenants.slice(0, REPORT_TOP_TENANTS * 4);
  return html`
<p>Run ${report.runId} at ${report.runAt}, period ${report.period}.</p>
${report.dataProblem === null ? '' : html`<p class="bad"><strong>Cost data UNKNOWN: ${report.dataProblem}</strong></p>`}
<h2>Budget used (most first)</h2>
${trusted(budgetChartSvg(report.tenants.slice(0, REPORT_TOP_TENANTS)))}
<table><caption>Per tier</caption><thead><tr><th scope="col">Tier</th><th scope="col">Tenants</th><th scope="col">Revenue</th><th scope="col">Cost</th><th scope="col">Margin</th></tr></thead>
<tbody>${report.tiers.map(
    (t) =>
      html`<tr><th scope="row">${t.tier}</th><td>${t.tenants}</td><td>${money(t.revenueUsd)}</td><td>${money(t.costUsd)}</td><td>${percent(t.margin)}</td></tr>`,
  )}</tbody></table>
<h2>Projected month end (metered, at the rate so far)</h2>
<table><caption>Projection per tenant, with its trend by day (the daily report's chart)</caption>
<thead><tr><th scope="col">Tenant</th><th scope="col">Spent</th><th scope="col">Projected</th><th scope="col">Budget</th><th scope="col">Budget reached</th><th scope="col">Trend</th></tr></thead>
<tbody>${report.projections.map((p) => {
    const last = p.points.at(-1);
    return html`<tr><th scope="row"><a href="/console/tenants/${p.tenantId}">${p.tenantId}</a></th><td>${money(last?.spentUsd ?? 0)}</td><td>${money(last?.projectedUsd ?? 0)}</td><td>${money(p.budgetUsd)}</td><td${p.limitReachedOn === null ? '' : trusted(' class="bad"')}>${p.limitReachedOn ?? '-'}</td><td>${trusted(projectionTrendSvg(p))}</td></tr>`;
  })}</tbody></table>
<p>Untagged cost: ${money(report.untaggedUsd)}. Cost guard this period: ${report.guard.runs} run(s), ${report.guard.ceRequests} Cost Explorer request(s), ${money(report.guard.ceCostUsd)}.</p>
<table><caption>Per tenant, by share of budget (${shown.length} of ${report.tenants.length})</caption>
<thead><tr><th scope="col">Tenant</th><th scope="col">Tier</th><th scope="col">Billed</th><th scope="col">Metered</th><th scope="col">Budget</th><th scope="col">Used</th><th scope="col">Guard state</th></tr></thead>
<tbody>${shown.map(
    (t) =>
      html`<tr><th scope="row"><a href="/console/tenants/${t.tenantId}">${t.tenantId}</a></th><td>${t.tier}</td><td>${money(t.billedUsd)}</td><td>${money(t.meteredUsd)}</td><td>${money(t.budgetUsd)}</td><td>${percent(t.budgetUsed)}</td><td>${t.state}</td></tr>`,
  )}</tbody></table>
<h2>Guard runs</h2>
${runs.map(
  (
    r,
  ) => html`<table><caption>Run ${r.id} (${r.mode}) at ${when(r.startedAt)}: ${r.outcome ?? 'in progress'}; ${r.ceRequests} Cost Explorer request(s)${r.dataProblem === null ? '' : `; data unknown: ${r.dataProblem}`}</caption>
<thead><tr><th scope="col">Tenant</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Held</th><th scope="col">Evidence</th></tr></thead>
<tbody>${
    r.decisions.length === 0
      ? html`<tr><td colspan="5">no state changed</td></tr>`
      : r.decisions.map(
          (d) =>
            html`<tr><th scope="row">${d.tenantId}</th><td>${d.from}</td><td>${d.to}</td><td>${d.hold ?? '-'}</td><td>${d.reason}; metered ${money(d.meteredUsd)}, billed ${money(d.billedUsd)}, budget ${money(d.budgetUsd)}</td></tr>`,
        )
  }</tbody></table>`,
)}`;
}

export function healthPage(
  checks: readonly Readiness[],
  traffic: TrafficFigures,
  runs: readonly ScheduledRun[],
): SafeHtml {
  return html`<section id="health" data-live aria-label="health">
<table><caption>Readiness</caption><thead><tr><th scope="col">Dependency</th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
<tbody>${checks.map(
    (c) =>
      html`<tr><th scope="row">${c.name}</th><td class="${c.ok ? 'good' : 'bad'}">${c.ok ? 'ready' : 'NOT READY'}</td><td>${c.detail}</td></tr>`,
  )}</tbody></table>
<table><caption>Control plane traffic, last ${traffic.windowSeconds} s (this replica's /metrics)</caption>
<thead><tr><th scope="col">Figure</th><th scope="col">Value</th></tr></thead><tbody>
<tr><th scope="row">Request rate</th><td>${traffic.requestsPerSecond.toFixed(2)} /s</td></tr>
<tr><th scope="row">Error rate (5xx)</th><td>${percent(traffic.errorRate)}</td></tr>
<tr><th scope="row">p95 latency (bucket bound)</th><td>${traffic.p95Seconds === null ? '-' : `≤ ${(traffic.p95Seconds * 1000).toFixed(1)} ms`}</td></tr>
</tbody></table>
<table><caption>Scheduled jobs (CronJobs), as bin/with-heartbeat.ts records each run</caption><thead><tr><th scope="col">CronJob</th><th scope="col">Last run started</th><th scope="col">Ended</th><th scope="col">Result</th></tr></thead>
<tbody>${runs.map((r) => html`<tr><th scope="row">${r.job}</th><td>${when(r.lastRunAt)}</td><td>${when(r.finishedAt)}</td><td class="${r.exitCode === null ? '' : r.exitCode === 0 ? 'good' : 'bad'}">${r.detail}</td></tr>`)}</tbody></table>
</section>`;
}

export function signInPage(issuer: string | undefined, problem: string | null): SafeHtml {
  if (issuer === undefined) {
    return html`<p>Console sign-in is not configured: set <code>OIDC_ISSUER_URL</code>, <code>OIDC_CLIENT_ID</code> and <code>CONSOLE_PUBLIC_URL</code>.</p>`;
  }
  return html`${problem === null ? '' : html`<p class="bad" role="alert">${problem}</p>`}
<p><a href="/console/login/start">Sign in with ${new URL(issuer).host}</a></p>`;
}

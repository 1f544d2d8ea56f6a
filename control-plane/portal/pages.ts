import { dailyBarsSvg } from '../console/charts.ts';
import { html, type SafeHtml, trusted } from '../console/html.ts';
import { leasesTable, standingTable } from '../console/pages.ts';
import type { ApiKeyRow, DailyUsage } from '../console/tenant-detail.ts';
import type { LiveLease } from '../lease-store.ts';
import type { tenantStanding } from '../routes/usage-view.ts';
import type { TenantState } from '../tenant-cache.ts';

export interface PortalView {
  readonly tenant: TenantState;
  /** What GET /v1/usage answers the tenant. */
  readonly standing: Awaited<ReturnType<typeof tenantStanding>>;
  readonly leases: readonly LiveLease[];
  readonly now: number;
  readonly daily: readonly DailyUsage[];
  readonly rateLimitHits: readonly { readonly day: string; readonly hits: number }[];
  readonly keys: readonly ApiKeyRow[];
}

const when = (d: Date | null) => (d === null ? '-' : d.toISOString().replace('T', ' ').slice(0, 19));

export function portalSignInPage(problem: string | null): SafeHtml {
  return html`${problem === null ? '' : html`<p class="bad" role="alert">${problem}</p>`}
<form data-api="POST /portal/session" data-then="reload">
<label for="api-key">API key</label>
<input id="api-key" name="key" type="password" autocomplete="off" required size="60" spellcheck="false">
<button type="submit">Sign in</button>
</form>
<p>The key is exchanged for a session of limited length; the browser does not keep it.</p>`;
}

export function portalPage(view: PortalView): SafeHtml {
  const tier = view.tenant.tier;
  const hitsTotal = view.rateLimitHits.reduce((sum, d) => sum + d.hits, 0);
  return html`<section id="usage" data-live aria-label="usage this month">
${standingTable(view.standing.usage, `Usage in ${view.standing.usage.period} against your ${tier.name} quota; rate limit ${tier.rateLimit.requestsPerSecond} requests/s plus a burst of ${tier.rateLimit.burst}`)}
<h2>Tasks running</h2>
${leasesTable(view.leases, { now: view.now, concurrentTasks: tier.concurrentTasks, maxTaskMinutes: tier.maxTaskMinutes })}
<h2>By day</h2>
${trusted(
  dailyBarsSvg(
    view.daily.map((d) => ({ label: d.day, value: d.agentMinutes })),
    { title: 'agent-minutes per day', unit: 'agent-minutes' },
  ),
)}
${trusted(
  dailyBarsSvg(
    view.daily.map((d) => ({ label: d.day, value: d.apiCalls })),
    { title: 'API calls per day', unit: 'API calls' },
  ),
)}
<h2>Rate-limit hits</h2>
<table><caption>Requests refused by the rate limit, last 30 days: ${hitsTotal}</caption>
<thead><tr><th scope="col">Day</th><th scope="col">Refused</th></tr></thead>
<tbody>${view.rateLimitHits.length === 0 ? html`<tr><td colspan="2">none</td></tr>` : view.rateLimitHits.map((d) => html`<tr><th scope="row">${d.day}</th><td>${d.hits}</td></tr>`)}</tbody></table>
</section>
<h2>Your API keys</h2>
<table><caption>API keys by prefix</caption><thead><tr><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th></tr></thead>
<tbody>${view.keys.map((k) => html`<tr><th scope="row"><code>${k.prefix}</code></th><td>${when(k.createdAt)}</td><td>${when(k.lastUsedAt)}</td><td>${k.revokedAt === null ? 'active' : `revoked ${when(k.revokedAt)}`}</td></tr>`)}</tbody></table>`;
}

import { dailyBarsSvg } from '../console/charts.ts';
import { html, type SafeHtml, trusted } from '../console/html.ts';
import { usageMeter } from '../console/pages.ts';
import type { ApiKeyRow, DailyUsage } from '../console/tenant-detail.ts';
import type { MonthUsage } from '../hot-store.ts';
import type { TenantState } from '../tenant-cache.ts';

export interface PortalView {
  readonly tenant: TenantState;
  readonly period: string;
  readonly usage: MonthUsage;
  readonly daily: readonly DailyUsage[];
  readonly rateLimitHits: readonly { readonly day: string; readonly hits: number }[];
  readonly activeTasks: number;
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
<table><caption>Usage in ${view.period} against your ${tier.name} quota</caption>
<thead><tr><th scope="col">Meter</th><th scope="col">Used / quota</th></tr></thead><tbody>
<tr><th scope="row">Agent-minutes</th><td>${usageMeter('agent-minutes', view.usage.agentMinutes, tier.agentMinutesPerMonth)}</td></tr>
<tr><th scope="row">API calls</th><td>${usageMeter('API calls', view.usage.apiCalls, tier.apiCallsPerMonth)}</td></tr>
<tr><th scope="row">Tasks running</th><td>${usageMeter('tasks running', view.activeTasks, tier.concurrentTasks)}</td></tr>
<tr><th scope="row">Rate limit</th><td>${tier.rateLimit.requestsPerSecond} requests/s plus a burst of ${tier.rateLimit.burst}</td></tr>
</tbody></table>
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

import { ZodError } from 'zod';
import { ConfigError } from '../config/environments.ts';
import { ApiKeyNotFoundError } from './api-keys.ts';
import { AuditTextError } from './audit.ts';
import { CellConfigError, UnknownCellError } from './cells.ts';
import { DatabaseUnavailableError, TenantNotFoundError } from './errors.ts';
import { KubeApiError } from './kubernetes/config.ts';
import type { CreateTenantResult, TenantDetails, TenantRecord } from './provisioner.ts';
import { ReadinessError, TenantStateError } from './provisioner.ts';
import { AwsServiceError, AwsUnavailableError } from './tenant-aws.ts';
import { TenantRoleConflictError } from './tenant-database.ts';
import { TenantIdError } from './tenant-id.ts';
import { TierError } from './tiers.ts';

const EXPECTED = [
  TenantIdError,
  TierError,
  TenantStateError,
  TenantNotFoundError,
  ApiKeyNotFoundError,
  DatabaseUnavailableError,
  AwsUnavailableError,
  AwsServiceError,
  ReadinessError,
  KubeApiError,
  ConfigError,
  AuditTextError,
  TenantRoleConflictError,
  UnknownCellError,
  CellConfigError,
];

/** One line for an expected failure (bad input, unreachable dependency); undefined for a bug. */
export function expectedFailure(error: unknown): string | undefined {
  if (EXPECTED.some((kind) => error instanceof kind)) return (error as Error).message.split('\n')[0];
  if (error instanceof ZodError) {
    const issue = error.issues[0];
    return `invalid input: '${issue?.path.join('.')}' ${issue?.message}`;
  }
  return undefined;
}

/** A plain text table; the first row is the header. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join('\n');
}

export function formatCreateResult(result: CreateTenantResult): string {
  const lines: string[] = [];
  const t = result.tenant;
  if (result.dryRun)
    lines.push(`plan for ${t ? `tenant ${t.id} (${t.status})` : 'a new tenant'} (dry run, nothing changed):`);
  else
    lines.push(
      `tenant ${t!.id}: ${t!.status}, tier ${t!.tier}, cell ${t!.cellId}, ${t!.hostname}, ready=${result.ready}`,
    );
  lines.push(
    formatTable([
      ['step', 'action', 'ms', 'changes'],
      ...result.steps.map((s) => [
        s.step,
        s.action,
        result.dryRun ? '' : s.ms.toFixed(1),
        s.changes.join('; '),
      ]),
    ]),
  );
  if (!result.dryRun)
    lines.push(`total ${result.timings.total?.toFixed(1)} ms${result.changed ? '' : ' (nothing to change)'}`);
  if (result.apiKey) lines.push(`api key (shown once, store it now): ${result.apiKey.key}`);
  return lines.join('\n');
}

export function formatTenant(t: TenantDetails): string {
  const l = t.limits;
  return [
    `tenant ${t.id}`,
    `  status       ${t.status} (since ${t.statusChangedAt.toISOString()})`,
    `  tier         ${t.tier}: $${l.priceUsdMonthly}/month, cost budget $${l.monthlyCostBudgetUsd}/month`,
    `  hostname     ${t.hostname ?? '-'}`,
    `  cell         ${t.cellId}, schema version ${t.schemaVersion}`,
    `  database     ${l.database.connectionLimit} connections, statement_timeout ${l.database.statementTimeoutMs} ms`,
    `  kubernetes   ${l.kubernetes.pods} pods, ${l.kubernetes.jobs} jobs, cpu ${l.kubernetes.limitsCpu}, memory ${l.kubernetes.limitsMemory}`,
    `  usage caps   ${l.agentMinutesPerMonth} agent-minutes, ${l.apiCallsPerMonth} API calls, ${l.rateLimit.requestsPerSecond} req/s`,
    `  api keys     ${t.activeApiKeys} active`,
    `  steps        ${t.steps.map((s) => `${s.step}:${s.state}${s.error ? ` (${s.error})` : ''}`).join(', ') || '-'}`,
  ].join('\n');
}

export function formatTenantList(tenants: TenantRecord[]): string {
  if (tenants.length === 0) return 'no tenants';
  return formatTable([
    ['id', 'tier', 'status', 'cell', 'hostname', 'created'],
    ...tenants.map((t) => [t.id, t.tier, t.status, t.cellId, t.hostname ?? '-', t.createdAt.toISOString()]),
  ]);
}

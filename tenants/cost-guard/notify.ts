import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type pg from 'pg';
import { BUDGET_LINES } from '../budget-lines.ts';
import type { TenantDecision } from './plan.ts';

/** What a notification is about: the state entered, or a request for a human. */
export type NotificationKind = TenantDecision['to'] | 'needs-human' | 'suspend-approval';

/**
 * The notifications a decision calls for; each is sent at most once per tenant and period. A
 * non-ok state is asked for on every run, so a message SNS refused once is sent by the next run.
 */
export function notificationKinds(decision: TenantDecision): NotificationKind[] {
  const kinds: NotificationKind[] = [];
  if (decision.to !== 'ok' || decision.actions.includes('notify')) kinds.push(decision.to);
  if (decision.needsHuman) kinds.push('needs-human');
  if (decision.hold === 'needs-approval') kinds.push('suspend-approval');
  return kinds;
}

const percentOf = (line: keyof typeof BUDGET_LINES) => `${Math.round(BUDGET_LINES[line] * 100)}%`;

const SUBJECTS: Record<NotificationKind, string> = {
  ok: 'back within budget',
  warning: `at ${percentOf('warning')} of its cost budget`,
  limited: `limited: new work stopped at ${percentOf('limited')} of budget`,
  suspended: `suspended at ${percentOf('suspended')} of budget`,
  'needs-human': 'billing over budget without metering: check',
  'suspend-approval': 'suspension waiting for --approve-suspend',
};

export interface Notifier {
  readonly sns: SNSClient;
  readonly topicArn: string;
  readonly db: pg.Pool;
}

/**
 * Publishes one notification unless this tenant, period and kind was already sent. The record is
 * written after SNS accepts, so a crash in between repeats a message rather than losing one.
 */
export async function notifyOnce(
  notifier: Notifier,
  runId: number,
  period: string,
  decision: TenantDecision,
  kind: NotificationKind,
): Promise<boolean> {
  const { rowCount } = await notifier.db.query(
    'SELECT 1 FROM control.cost_guard_notifications WHERE tenant_id = $1 AND period = $2 AND kind = $3',
    [decision.tenantId, period, kind],
  );
  if (rowCount) return false;
  const subject = `[cost-guard] ${decision.tenantId} ${SUBJECTS[kind]}`.slice(0, 100);
  const { MessageId } = await notifier.sns.send(
    new PublishCommand({
      TopicArn: notifier.topicArn,
      Subject: subject,
      Message: JSON.stringify({
        source: 'cost-guard',
        runId,
        period,
        kind,
        tenantId: decision.tenantId,
        tier: decision.tier,
        from: decision.from,
        to: decision.to,
        budgetUsd: decision.budgetUsd,
        meteredUsd: decision.meteredUsd,
        billedUsd: decision.billedUsd,
        reason: decision.reason,
      }),
    }),
  );
  await notifier.db.query(
    `INSERT INTO control.cost_guard_notifications (tenant_id, period, kind, run_id, message_id)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [decision.tenantId, period, kind, runId, MessageId ?? null],
  );
  return true;
}

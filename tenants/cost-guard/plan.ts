import { getTier, meteredCostUsd } from '../tiers.ts';
import type { GuardInputs, TenantInput } from './inputs.ts';
import {
  actionCap,
  actionsFor,
  applyConfirmations,
  applyHysteresis,
  applyOverride,
  costDataProblem,
  type GuardAction,
  type GuardPolicy,
  type GuardState,
  holdingRatio,
  isCappedAction,
  maxState,
  needsHuman,
  type Pending,
  rank,
  stateForPeriod,
  targetState,
} from './rules.ts';

/** Why a change the evidence supports is not made in this run. */
export type Hold = 'unknown-data' | 'kill-switch' | 'cap' | 'needs-approval' | 'override' | 'set-by-human';

/** The actor the guard writes into the audit trail. */
export const GUARD_ACTOR = 'cost-guard';

export interface TenantDecision {
  readonly tenantId: string;
  readonly tier: string;
  readonly status: string;
  readonly budgetUsd: number;
  readonly meteredUsd: number;
  /** Null when Cost Explorer has no line for the tenant. */
  readonly billedUsd: number | null;
  readonly meterRatio: number;
  readonly billRatio: number | null;
  /** Stored state (possibly from the last period) and the state after this run. */
  readonly from: GuardState;
  readonly to: GuardState;
  /** The state the evidence alone supports, before holds. */
  readonly target: GuardState;
  readonly pending: Pending;
  readonly actions: GuardAction[];
  readonly hold: Hold | null;
  /** Billing crossed a hard line that metering does not confirm. */
  readonly needsHuman: boolean;
  readonly reason: string;
}

export interface GuardPlan {
  readonly period: string;
  readonly now: string;
  /** Why no decision could use the cost data; null when it was usable. */
  readonly dataProblem: string | null;
  readonly cap: { readonly limit: number; readonly used: number; readonly held: number };
  readonly ceRequests: number;
  readonly untaggedUsd: number;
  readonly tenants: TenantDecision[];
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

function decideTenant(t: TenantInput, inputs: GuardInputs, dataProblem: string | null): TenantDecision {
  const policy: GuardPolicy = inputs.config.policy;
  const now = new Date(inputs.now);
  const budgetUsd = getTier(t.tier).monthlyCostBudgetUsd;
  const meteredUsd = round(meteredCostUsd(t));
  const billed = inputs.costs.byTenant[t.id];
  const billedUsd = billed === undefined ? null : round(billed);
  const meterRatio = meteredUsd / budgetUsd;
  const billRatio = billedUsd === null ? null : billedUsd / budgetUsd;
  const stored: Pending = { state: t.pendingState, runs: t.pendingRuns };
  const base = {
    tenantId: t.id,
    tier: t.tier,
    status: t.status,
    budgetUsd,
    meteredUsd,
    billedUsd,
    meterRatio: round(meterRatio),
    billRatio: billRatio === null ? null : round(billRatio),
    from: t.guardState,
  };
  const keep = (hold: Hold, reason: string): TenantDecision => ({
    ...base,
    to: t.guardState,
    target: t.guardState,
    pending: stored,
    actions: [],
    hold,
    needsHuman: false,
    reason,
  });
  if (dataProblem !== null) return keep('unknown-data', `state kept: ${dataProblem}`);
  const estimated = inputs.costs.estimated;

  const current = stateForPeriod(t.guardState, t.statePeriod, inputs.period);
  const pending = t.statePeriod === inputs.period ? stored : { state: null, runs: 0 };
  const target = targetState(meterRatio, billRatio, policy);
  const human = needsHuman(meterRatio, billRatio, policy);
  const settled = applyHysteresis(current, target, holdingRatio(meterRatio, billRatio, estimated), policy);
  const confirmed = applyConfirmations(current, settled, pending, policy);
  let to = applyOverride(current, confirmed.state, t.overrideExpiresAt, now);
  let hold: Hold | null = to === confirmed.state ? null : 'override';
  const approved = inputs.config.autoSuspend || inputs.config.approveSuspend;
  if (to === 'suspended' && current !== 'suspended' && !approved) {
    to = maxState(current, 'limited');
    hold = 'needs-approval';
  }
  // A held escalation stays confirmed, so the run that may act on it does so at once.
  const held = (state: GuardState): Pending =>
    rank(state) > rank(to)
      ? { state, runs: policy.confirmations[state as Exclude<GuardState, 'ok'>] }
      : confirmed.pending;
  let pendingAfter = hold === 'needs-approval' ? held(confirmed.state) : confirmed.pending;
  if (!inputs.config.enforcementEnabled && to !== t.guardState) {
    to = t.guardState;
    hold = 'kill-switch';
    pendingAfter = stored;
  }
  const parts = [
    `metering ${(meterRatio * 100).toFixed(1)}%`,
    billRatio === null
      ? 'billing: no Cost Explorer line'
      : `billing ${(billRatio * 100).toFixed(1)}%${estimated ? ' (Estimated)' : ''}`,
    `of $${budgetUsd} budget`,
  ];
  if (pendingAfter.state !== null) {
    const needed = policy.confirmations[pendingAfter.state as Exclude<GuardState, 'ok'>];
    parts.push(`${pendingAfter.state} seen ${pendingAfter.runs}/${needed} runs`);
  }
  if (human) parts.push('billing alone crosses a hard line: a human should check');
  let actions = actionsFor(t.guardState, to);
  // A limit or suspension someone else set is theirs to lift: the guard only undoes its own.
  if (actions.includes('resume') && t.statusActor !== GUARD_ACTOR && t.status !== 'active') {
    actions = actions.filter((a) => a !== 'resume' && a !== 'limit');
    hold = 'set-by-human';
    parts.push(`status ${t.status} was set by ${t.statusActor ?? 'someone else'}: left as it is`);
  }
  return {
    ...base,
    to,
    target,
    pending: pendingAfter,
    actions,
    hold,
    needsHuman: human,
    reason: parts.join(', '),
  };
}

/** A tenant held by the cap keeps its escalation confirmed for the next run. */
function capPending(d: TenantDecision, policy: GuardPolicy): Pending {
  const state = d.to as Exclude<GuardState, 'ok'>;
  return { state, runs: policy.confirmations[state] };
}

/**
 * The whole run's plan from its stored inputs: pure, so the dry run, the real run and a replay
 * of the same inputs agree. Escalations beyond the per-run cap are held, worst tenants first.
 */
export function planRun(inputs: GuardInputs): GuardPlan {
  const dataProblem = costDataProblem(inputs.costs, new Date(inputs.now), inputs.config.maxDataAgeHours);
  const decisions = inputs.tenants.map((t) => decideTenant(t, inputs, dataProblem));
  const limit = actionCap(decisions.length, inputs.config.maxActionsPerRun, inputs.config.maxActionsPercent);
  const capped = decisions
    .map((d, i) => ({ d, i }))
    .filter(({ d }) => isCappedAction(d.actions))
    .sort((a, b) => rank(b.d.to) - rank(a.d.to) || b.d.meterRatio - a.d.meterRatio || a.i - b.i);
  const held = new Set(capped.slice(limit).map(({ i }) => i));
  const tenants = decisions.map((d, i) =>
    held.has(i)
      ? {
          ...d,
          to: d.from,
          pending: capPending(d, inputs.config.policy),
          actions: [],
          hold: 'cap' as const,
          reason: `${d.reason}; held: per-run action cap ${limit} reached`,
        }
      : d,
  );
  return {
    period: inputs.period,
    now: inputs.now,
    dataProblem,
    cap: { limit, used: Math.min(limit, capped.length), held: held.size },
    ceRequests: inputs.costs.requests,
    untaggedUsd: round(inputs.costs.untaggedUsd),
    tenants,
  };
}

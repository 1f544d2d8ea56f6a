/**
 * The cost guard's state machine as small pure rules. Each takes plain numbers and states and
 * returns the next value, so each is tested alone and a stored run replays to the same plan.
 */

import { BUDGET_LINES } from '../budget-lines.ts';

export const GUARD_STATES = ['ok', 'warning', 'limited', 'suspended'] as const;
export type GuardState = (typeof GUARD_STATES)[number];

/** Hard states stop work; the guard needs agreement (or a clear metering margin) to enter them. */
export type HardState = 'limited' | 'suspended';

export interface GuardPolicy {
  /** Fraction of the tier's monthly cost budget at which each state starts. */
  readonly lines: { readonly warning: number; readonly limited: number; readonly suspended: number };
  /** Metering alone may escalate to a hard state when it crosses the line by this fraction of the line. */
  readonly meteringOnlyMargin: number;
  /** A state is left only once the ratio falls this far (in budget fractions) below its line. */
  readonly hysteresis: number;
  /** Consecutive runs a state must be seen before the guard enters it. */
  readonly confirmations: { readonly warning: number; readonly limited: number; readonly suspended: number };
}

export const DEFAULT_POLICY: GuardPolicy = {
  lines: BUDGET_LINES,
  meteringOnlyMargin: 0.1,
  hysteresis: 0.1,
  confirmations: { warning: 1, limited: 1, suspended: 2 },
};

export function rank(state: GuardState): number {
  return GUARD_STATES.indexOf(state);
}

export function maxState(a: GuardState, b: GuardState): GuardState {
  return rank(a) >= rank(b) ? a : b;
}

/** The highest state whose line the ratio has reached. */
export function levelAt(ratio: number, policy: GuardPolicy): GuardState {
  if (ratio >= policy.lines.suspended) return 'suspended';
  if (ratio >= policy.lines.limited) return 'limited';
  if (ratio >= policy.lines.warning) return 'warning';
  return 'ok';
}

/** Whether our metering justifies a hard state: billing agrees, or metering clears the line by the margin. */
export function hardLineConfirmed(
  line: number,
  meterRatio: number,
  billRatio: number,
  policy: GuardPolicy,
): boolean {
  const bothCross = meterRatio >= line && billRatio >= line;
  const meteringClear = meterRatio >= line * (1 + policy.meteringOnlyMargin);
  return bothCross || meteringClear;
}

/**
 * The state the evidence supports now. Warning needs either source; limited and suspended need
 * metering (confirmed by billing, Estimated or not, or alone with the margin). Billing alone never
 * goes beyond warning. `billRatio` is null when Cost Explorer has no line for the tenant: metering
 * then decides alone.
 */
export function targetState(meterRatio: number, billRatio: number | null, policy: GuardPolicy): GuardState {
  const bill = billRatio ?? 0;
  if (hardLineConfirmed(policy.lines.suspended, meterRatio, bill, policy)) return 'suspended';
  if (hardLineConfirmed(policy.lines.limited, meterRatio, bill, policy)) return 'limited';
  if (Math.max(meterRatio, bill) >= policy.lines.warning) return 'warning';
  return 'ok';
}

/** Billing says a hard line is crossed but metering does not confirm it: a human should look. */
export function needsHuman(meterRatio: number, billRatio: number | null, policy: GuardPolicy): boolean {
  if (billRatio === null) return false;
  return rank(levelAt(billRatio, policy)) > rank(targetState(meterRatio, billRatio, policy));
}

/**
 * The ratio that holds a tenant in its state (hysteresis). Final billing counts; Estimated billing
 * is provisional and never keeps a state the metering no longer supports, so it cannot block a lift.
 */
export function holdingRatio(meterRatio: number, billRatio: number | null, estimated: boolean): number {
  return billRatio === null || estimated ? meterRatio : Math.max(meterRatio, billRatio);
}

/** The ratio below which a state is left: its line minus the hysteresis. */
export function lowerLine(state: Exclude<GuardState, 'ok'>, policy: GuardPolicy): number {
  return policy.lines[state] - policy.hysteresis;
}

/**
 * Escalation is immediate; de-escalation stops at the highest state whose lower line the ratio
 * (the larger of metering and billing) still reaches.
 */
export function applyHysteresis(
  current: GuardState,
  target: GuardState,
  ratio: number,
  policy: GuardPolicy,
): GuardState {
  if (rank(target) >= rank(current)) return target;
  for (let r = rank(current); r > rank(target); r--) {
    const state = GUARD_STATES[r] as Exclude<GuardState, 'ok'>;
    if (ratio >= lowerLine(state, policy)) return state;
  }
  return target;
}

export interface Pending {
  /** The state seen in consecutive runs but not yet entered. */
  readonly state: GuardState | null;
  readonly runs: number;
}

export const NO_PENDING: Pending = { state: null, runs: 0 };

/**
 * Enters an escalated state only after it was seen in `confirmations[state]` consecutive runs;
 * until then the tenant holds the state just below it (never less than the current one), which
 * the same evidence supports because the lines rise with the states.
 */
export function applyConfirmations(
  current: GuardState,
  next: GuardState,
  pending: Pending,
  policy: GuardPolicy,
): { state: GuardState; pending: Pending } {
  if (rank(next) <= rank(current)) return { state: next, pending: NO_PENDING };
  const needed = policy.confirmations[next as Exclude<GuardState, 'ok'>];
  const runs = pending.state === next ? pending.runs + 1 : 1;
  if (runs >= needed) return { state: next, pending: NO_PENDING };
  return { state: maxState(current, GUARD_STATES[rank(next) - 1]!), pending: { state: next, runs } };
}

/** Every state resets with a new UTC month: a state stored for another period counts as ok. */
export function stateForPeriod(stored: GuardState, storedPeriod: string, period: string): GuardState {
  return storedPeriod === period ? stored : 'ok';
}

/** The UTC billing period of an instant, as YYYY-MM. */
export function periodOf(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** What is wrong with the cost data, or null when the guard may act on it. */
export interface CostDataFacts {
  /** Set when fetching failed part-way: throttled beyond the retry bound, a missing page, a partial period. */
  readonly problem: string | null;
  /** ISO end of the latest day that carries cost; null when no day does. */
  readonly dataTime: string | null;
}

/** Estimated is not a problem: it is how Cost Explorer marks the whole open month. */
export function costDataProblem(facts: CostDataFacts, now: Date, maxDataAgeHours: number): string | null {
  if (facts.problem !== null) return facts.problem;
  if (facts.dataTime === null) return 'cost data has no day carrying cost yet';
  const ageHours = (now.getTime() - Date.parse(facts.dataTime)) / 3_600_000;
  if (ageHours > maxDataAgeHours) {
    return `cost data is ${ageHours.toFixed(1)} h old (max ${maxDataAgeHours} h)`;
  }
  return null;
}

/** While an override is live, the guard may warn but enters no new hard state. */
export function applyOverride(
  current: GuardState,
  next: GuardState,
  overrideExpiresAt: string | null,
  now: Date,
): GuardState {
  if (overrideExpiresAt === null || Date.parse(overrideExpiresAt) <= now.getTime()) return next;
  const ceiling = maxState(current, 'warning');
  return rank(next) > rank(ceiling) ? ceiling : next;
}

export type GuardAction = 'notify' | 'limit' | 'suspend' | 'resume';

/**
 * What moving between two states takes. `from` is the state as stored (it may belong to the last
 * period: a tenant limited last month is resumed when the new month starts at ok).
 */
export function actionsFor(from: GuardState, to: GuardState): GuardAction[] {
  if (from === to) return [];
  if (rank(to) > rank(from)) {
    if (to === 'suspended') return ['suspend', 'notify'];
    if (to === 'limited') return ['limit', 'notify'];
    return ['notify'];
  }
  if (from === 'suspended' && to === 'limited') return ['resume', 'limit', 'notify'];
  if (from === 'suspended' || from === 'limited') return ['resume', 'notify'];
  return ['notify'];
}

/** Escalations that stop work count against the per-run cap; lifting a restriction does not. */
export function isCappedAction(actions: readonly GuardAction[]): boolean {
  return actions.includes('limit') || actions.includes('suspend');
}

/** Tenants that may be acted on in one run: the smaller of the count cap and the percentage cap. */
export function actionCap(tenantCount: number, maxActionsPerRun: number, maxActionsPercent: number): number {
  return Math.min(maxActionsPerRun, Math.ceil((tenantCount * maxActionsPercent) / 100));
}

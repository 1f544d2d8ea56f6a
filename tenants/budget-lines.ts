/**
 * The budget lines, as fractions of a tenant's monthly cost budget: at 90% the guard warns, at 100% it
 * stops new work, at 200% it suspends. The AWS budget alerts, the guard's policy, its notices and the
 * cost report all read them here.
 */
export const BUDGET_LINES = { warning: 0.9, limited: 1, suspended: 2 } as const;

/** The same lines in percent, lowest first (the AWS budget's notification thresholds). */
export const BUDGET_LINE_PERCENTS = Object.values(BUDGET_LINES)
  .map((fraction) => Math.round(fraction * 100))
  .sort((a, b) => a - b);

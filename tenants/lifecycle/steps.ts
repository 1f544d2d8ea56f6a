/** What a step did: changed something, found it in sync, was not enabled, or (dry run) would change it. */
export type StepAction = 'applied' | 'unchanged' | 'skipped' | 'planned';

export interface StepResult<Name extends string = string> {
  readonly step: Name;
  readonly action: StepAction;
  readonly ms: number;
  /** The difference between desired and actual state, in words; on a dry run, what apply would do. */
  readonly changes: readonly string[];
}

/** A step's view of the run so far: the results of the steps before it. */
export interface RunSoFar<Name extends string = string> {
  readonly dryRun: boolean;
  readonly results: readonly StepResult<Name>[];
}

/**
 * One step of a lifecycle operation. `plan` reads what exists and says what differs (null: the step is
 * not enabled); it changes nothing. `apply` makes the planned changes and says what it did. The runner
 * calls apply only when the plan has changes, unless the step is a `check` that runs every time.
 */
export interface Step<Ctx, Name extends string = string> {
  readonly name: Name;
  plan(ctx: Ctx, run: RunSoFar<Name>): Promise<readonly string[] | null>;
  apply(ctx: Ctx, planned: readonly string[], run: RunSoFar<Name>): Promise<readonly string[]>;
  /** Runs apply on every real run, even with nothing planned (a readiness check). @default false */
  readonly check?: boolean;
}

/** Steps run one after another; an array inside the list runs its steps at the same time. */
export type StepList<Ctx, Name extends string = string> = readonly (
  | Step<Ctx, Name>
  | readonly Step<Ctx, Name>[]
)[];

/**
 * Watches a run: progress on a terminal, and in tests a simulated crash (throw from afterStep). An error
 * thrown by the observer stops the run like a crash: no failure is recorded for the step.
 */
export interface StepObserver {
  beforeStep?(step: string): void | Promise<void>;
  afterStep?(result: StepResult): void | Promise<void>;
}

/** A step's plan or apply threw; carries the step and the results before it. */
export interface StepFailure<Name extends string = string> {
  readonly step: Name;
  readonly error: unknown;
  readonly completed: readonly StepResult<Name>[];
}

export interface RunOptions<Name extends string> {
  readonly dryRun?: boolean;
  readonly observer?: StepObserver;
  /** Called once when a step fails, before the error propagates (record where the run stopped). */
  readonly onFailure?: (failure: StepFailure<Name>) => Promise<void>;
}

const elapsed = (t0: number) => Number((performance.now() - t0).toFixed(2));

class ObserverStop {
  constructor(readonly error: unknown) {}
}

async function observe(work: () => void | Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    throw new ObserverStop(error);
  }
}

async function runOne<Ctx, Name extends string>(
  step: Step<Ctx, Name>,
  ctx: Ctx,
  so: RunSoFar<Name>,
  options: RunOptions<Name>,
): Promise<StepResult<Name>> {
  await observe(() => options.observer?.beforeStep?.(step.name));
  const t0 = performance.now();
  const planned = await step.plan(ctx, so);
  let result: StepResult<Name>;
  if (planned === null) result = { step: step.name, action: 'skipped', ms: elapsed(t0), changes: [] };
  else if (so.dryRun) {
    result = {
      step: step.name,
      action: planned.length > 0 ? 'planned' : 'unchanged',
      ms: elapsed(t0),
      changes: planned,
    };
  } else if (planned.length === 0 && !step.check) {
    result = { step: step.name, action: 'unchanged', ms: elapsed(t0), changes: [] };
  } else {
    const changes = await step.apply(ctx, planned, so);
    result = {
      step: step.name,
      action: changes.length > 0 ? 'applied' : 'unchanged',
      ms: elapsed(t0),
      changes,
    };
  }
  await observe(() => options.observer?.afterStep?.(result));
  return result;
}

/**
 * Runs the steps in order with the same code for a dry run and a real one: a dry run calls only `plan`.
 * Returns the typed result of every step, in list order.
 */
export async function runSteps<Ctx, Name extends string>(
  steps: StepList<Ctx, Name>,
  ctx: Ctx,
  options: RunOptions<Name> = {},
): Promise<StepResult<Name>[]> {
  const results: StepResult<Name>[] = [];
  const so: RunSoFar<Name> = { dryRun: options.dryRun ?? false, results };
  let failed = false;
  const guarded = async (step: Step<Ctx, Name>) => {
    try {
      return await runOne(step, ctx, so, options);
    } catch (error) {
      if (error instanceof ObserverStop) throw error;
      if (!failed) {
        failed = true;
        await options.onFailure?.({ step: step.name, error, completed: [...results] });
      }
      throw error;
    }
  };
  try {
    for (const entry of steps) {
      if (Array.isArray(entry)) {
        const group = entry as readonly Step<Ctx, Name>[];
        const outcomes = await Promise.allSettled(group.map(guarded));
        for (const outcome of outcomes) if (outcome.status === 'fulfilled') results.push(outcome.value);
        for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
      } else {
        results.push(await guarded(entry as Step<Ctx, Name>));
      }
    }
  } catch (error) {
    throw error instanceof ObserverStop ? error.error : error;
  }
  return results;
}

/** Milliseconds per step, for timings and audit evidence. */
export function stepTimings<Name extends string>(results: readonly StepResult<Name>[]) {
  return Object.fromEntries(results.map((r) => [r.step, r.ms])) as Partial<Record<Name, number>>;
}

/** True when any step changed something. */
export function anyApplied(results: readonly StepResult[]): boolean {
  return results.some((r) => r.action === 'applied');
}

/** The changes of a run, one line each, prefixed by their step: what a text report prints. */
export function stepLines(results: readonly StepResult[]): string[] {
  return results.flatMap((r) => r.changes.map((c) => `${r.step}: ${c}`));
}

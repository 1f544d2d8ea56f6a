import { describe, expect, test } from 'vitest';
import { runSteps, type Step, type StepResult } from './steps.ts';

interface World {
  value: number;
  wanted: number;
  applied: string[];
}

const setValue: Step<World> = {
  name: 'value',
  async plan(w) {
    return w.value === w.wanted ? [] : [`value ${w.value} -> ${w.wanted}`];
  },
  async apply(w, planned) {
    w.value = w.wanted;
    w.applied.push('value');
    return planned;
  },
};

const disabled: Step<World> = {
  name: 'disabled',
  async plan() {
    return null;
  },
  async apply() {
    throw new Error('never applied');
  },
};

const check: Step<World> = {
  name: 'check',
  check: true,
  async plan(_w, so) {
    return so.dryRun ? null : [];
  },
  async apply(w) {
    w.applied.push('check');
    if (w.value !== w.wanted) throw new Error('not converged');
    return [];
  },
};

const failing: Step<World> = {
  name: 'failing',
  async plan() {
    return ['do it'];
  },
  async apply() {
    throw new Error('boom');
  },
};

const world = (): World => ({ value: 1, wanted: 2, applied: [] });
const actions = (results: StepResult[]) => results.map((r) => [r.step, r.action]);

describe('runSteps', () => {
  test('a dry run calls only plan and reports what would change', async () => {
    const w = world();
    const results = await runSteps([setValue, disabled, check], w, { dryRun: true });
    expect(actions(results)).toEqual([
      ['value', 'planned'],
      ['disabled', 'skipped'],
      ['check', 'skipped'],
    ]);
    expect(results[0]?.changes).toEqual(['value 1 -> 2']);
    expect(w).toEqual(world());
  });

  test('a real run applies what differs, then a second run changes nothing but the check', async () => {
    const w = world();
    expect(actions(await runSteps([setValue, check], w))).toEqual([
      ['value', 'applied'],
      ['check', 'unchanged'],
    ]);
    expect(actions(await runSteps([setValue, check], w))).toEqual([
      ['value', 'unchanged'],
      ['check', 'unchanged'],
    ]);
    expect(w.applied).toEqual(['value', 'check', 'check']);
  });

  test('a failing step is reported once with the steps before it, and the error propagates as is', async () => {
    const failures: unknown[] = [];
    await expect(
      runSteps([setValue, failing, check], world(), {
        onFailure: async (f) => {
          failures.push({
            step: f.step,
            message: (f.error as Error).message,
            completed: actions([...f.completed]),
          });
        },
      }),
    ).rejects.toThrow('boom');
    expect(failures).toEqual([{ step: 'failing', message: 'boom', completed: [['value', 'applied']] }]);
  });

  test('the observer sees every step, and a throw from it stops the run like a crash, with no failure recorded', async () => {
    const seen: string[] = [];
    const failures: unknown[] = [];
    const w = world();
    await expect(
      runSteps([setValue, check], w, {
        observer: {
          beforeStep: (s) => {
            seen.push(`before ${s}`);
          },
          afterStep: (r) => {
            seen.push(`after ${r.step}`);
            if (r.step === 'value') throw new Error('crash');
          },
        },
        onFailure: async (f) => {
          failures.push(f);
        },
      }),
    ).rejects.toThrow('crash');
    expect(seen).toEqual(['before value', 'after value']);
    expect(failures).toEqual([]);
    expect(w.applied).toEqual(['value']);
  });

  test('steps grouped in an array run at the same time and report in list order', async () => {
    const started: string[] = [];
    const slow = (name: string, ms: number): Step<World> => ({
      name,
      async plan() {
        started.push(name);
        await new Promise((r) => setTimeout(r, ms));
        return [name];
      },
      async apply(_w, planned) {
        return planned;
      },
    });
    const results = await runSteps([[slow('a', 40), slow('b', 1)]], world());
    expect(started).toEqual(['a', 'b']);
    expect(results.map((r) => r.step)).toEqual(['a', 'b']);
  });
});

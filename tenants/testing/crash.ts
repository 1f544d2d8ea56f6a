import type { StepObserver } from '../lifecycle/steps.ts';

/** Stands for the process dying: thrown by crashAfter, never by product code. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

/** An observer that stops the run right after `step` completes, as a crash there would. */
export function crashAfter(step: string): StepObserver {
  return {
    afterStep(result) {
      if (result.step === step) throw new SimulatedCrash(`simulated crash after step '${step}'`);
    },
  };
}

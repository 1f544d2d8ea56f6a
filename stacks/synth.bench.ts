import type { BenchFigure } from '../bench/figure.ts';
import { ENVIRONMENT_NAMES } from '../config/environments.ts';
import { synthesizeAll } from './summary.ts';

const GOAL_SECONDS = 60;

/** Wall time of a full synth of every environment, with the resource count of each stack. */
export default async function bench(): Promise<BenchFigure[]> {
  const started = performance.now();
  const rows = await synthesizeAll();
  const seconds = (performance.now() - started) / 1000;
  const perStack = Object.fromEntries(rows.map((r) => [r.stack, r.resources]));
  return [
    {
      figure: `full synth of ${ENVIRONMENT_NAMES.join(', ')} (nag and tag checks included)`,
      value: Number(seconds.toFixed(1)),
      unit: 's',
      goal: `<= ${GOAL_SECONDS} s`,
      pass: seconds <= GOAL_SECONDS,
      detail: {
        resourcesPerStack: perStack,
        byType: Object.fromEntries(rows.map((r) => [r.stack, r.byType])),
      },
    },
    ...ENVIRONMENT_NAMES.map((env) => ({
      figure: `resources in ${env}`,
      value: rows.filter((r) => r.env === env).reduce((a, r) => a + r.resources, 0),
      unit: 'resources',
      detail: Object.fromEntries(rows.filter((r) => r.env === env).map((r) => [r.stack, r.resources])),
    })),
  ];
}

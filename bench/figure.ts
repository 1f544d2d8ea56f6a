/** One measured figure of `npm run bench`. */
export interface BenchFigure {
  /** What was measured, e.g. "full synth of dev, staging and prod". */
  readonly figure: string;
  readonly value: number;
  readonly unit: string;
  /** The goal in words, e.g. "<= 60 s". */
  readonly goal?: string;
  /** Whether the value meets the goal; absent when the figure has no goal. */
  readonly pass?: boolean;
  /** Further numbers worth keeping in the JSON (percentiles, counts). */
  readonly detail?: Record<string, unknown>;
}

/** A benchmark module's default export. */
export type Benchmark = () => Promise<BenchFigure[]>;

/** p-th percentile (0..100) of the samples, nearest-rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

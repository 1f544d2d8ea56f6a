/** How far a run over many tenants has come: reported after each tenant, done or failed. */
export interface FleetProgress {
  readonly done: number;
  readonly failed: number;
  readonly total: number;
}

/**
 * Runs `work` over `items` in list order, at most `concurrency` at a time. `work` reports its own per-item
 * failures; one that throws stops the run: no further item starts, those running finish, and the first
 * error is thrown.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let stop: { error: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
      while (stop === undefined && next < items.length) {
        const index = next++;
        try {
          await work(items[index]!, index);
        } catch (error) {
          stop ??= { error };
        }
      }
    }),
  );
  if (stop !== undefined) throw stop.error;
}

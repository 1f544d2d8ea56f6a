/** An expected drill failure (bad input, refused environment, missing resource); the CLI prints one line. */
export class DrillError extends Error {
  override readonly name: string = 'DrillError';
}

/** The drill was interrupted (SIGINT); cleanup still runs. */
export class DrillInterruptedError extends DrillError {
  override readonly name: string = 'DrillInterruptedError';
}

/** Throws DrillInterruptedError once the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, step: string): void {
  if (signal?.aborted) throw new DrillInterruptedError(`interrupted during '${step}'`);
}

/** Sleeps, waking early (and throwing) when the signal aborts. */
export async function sleep(ms: number, signal?: AbortSignal, step = 'wait'): Promise<void> {
  throwIfAborted(signal, step);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
  throwIfAborted(signal, step);
}

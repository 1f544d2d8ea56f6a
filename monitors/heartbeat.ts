import { spawn } from 'node:child_process';

/** A ping that hangs must not keep a finished CronJob pod alive. */
const PING_TIMEOUT_MS = 10_000;

export interface HeartbeatRun {
  /** Exit code of the wrapped command; the wrapper exits with it. */
  readonly exitCode: number;
  /** 'sent', 'skipped' (failure or no URL), or the reason the ping failed. */
  readonly heartbeat: string;
}

/**
 * Runs a command with inherited stdio and pings the heartbeat URL only when it exits 0, so the monitor raises an
 * incident when a run fails or never happens. A failed ping does not fail the run: the missing beat alerts anyway.
 */
export async function runWithHeartbeat(
  command: string,
  args: readonly string[],
  heartbeatUrl: string | undefined,
): Promise<HeartbeatRun> {
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + 15)));
  });
  if (exitCode !== 0 || heartbeatUrl === undefined || heartbeatUrl === '') {
    return { exitCode, heartbeat: 'skipped' };
  }
  try {
    const response = await fetch(heartbeatUrl, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) });
    return { exitCode, heartbeat: response.ok ? 'sent' : `HTTP ${response.status}` };
  } catch (error) {
    return { exitCode, heartbeat: error instanceof Error ? error.message : String(error) };
  }
}

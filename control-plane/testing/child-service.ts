import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ChildService {
  readonly child: ChildProcess;
  readonly url: string;
  /** SIGTERM (graceful: drains and flushes) and waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or the OOM killer would, and waits for the exit. */
  kill(): Promise<void>;
}

export interface ChildServiceOptions {
  /** Script relative to the repository root, run with tsx. */
  readonly script: string;
  readonly env: Record<string, string>;
  readonly port: number;
  /**
   * How long start-up may take. tsx compiles the whole import graph first, which on a loaded 2-core
   * machine takes far longer than the service itself. @default 120000
   */
  readonly readyTimeoutMs?: number;
  /** Extra Node.js options before the script, e.g. `--expose-gc`. @default - none */
  readonly nodeArgs?: readonly string[];
}

async function exitOf(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/**
 * Starts a service in a child process, so it and the load generator share the cores as separate
 * processes, and waits until `/readyz` answers 200. Each probe has its own short timeout, so a probe
 * stuck behind start-up work cannot outlast the deadline; the error names the last answer and the
 * last lines the child wrote on stderr.
 */
export async function startChildService(options: ChildServiceOptions): Promise<ChildService> {
  const url = `http://127.0.0.1:${options.port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), options.script], {
    cwd: ROOT,
    env: { ...process.env, ...options.env, PORT: String(options.port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2_000);
  });
  const service: ChildService = {
    child,
    url,
    stop: () => exitOf(child, 'SIGTERM'),
    kill: () => exitOf(child, 'SIGKILL'),
  };
  const timeoutMs = options.readyTimeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'not listening';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${options.script} exited with ${child.exitCode} during start-up: ${stderr.trim()}`);
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return service;
      last = `HTTP ${res.status} ${await res.text()}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await service.kill();
  throw new Error(
    `${options.script} was not ready within ${timeoutMs / 1000} s (last answer: ${last}); stderr: ${stderr.trim()}`,
  );
}

import { z } from 'zod';

/** Thrown when the control plane refuses a task or answers something the runner cannot use. */
export class AdmissionError extends Error {
  override readonly name = 'AdmissionError';
}

const leaseSchema = z.object({
  taskId: z.string(),
  expiresAt: z.iso.datetime(),
  heartbeatSeconds: z.number().positive(),
  maxRuntimeSeconds: z.number().positive(),
});
export type Lease = z.infer<typeof leaseSchema>;

const admissionSchema = z.discriminatedUnion('decision', [
  z.object({ decision: z.literal('allow'), lease: leaseSchema }),
  z.object({ decision: z.literal('deny'), reason: z.string() }),
]);

const heartbeatSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('continue'), expiresAt: z.iso.datetime() }),
  z.object({ action: z.literal('stop'), reason: z.string(), detail: z.string().optional() }),
]);

/** Why a task's signal was aborted; `signal.reason` is a TaskStopped carrying it. */
export class TaskStopped extends Error {
  override readonly name = 'TaskStopped';
  constructor(
    /** The control plane's reason (tenant-limited, agent-minutes, max-runtime, …), or `lease-lost`. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface TaskRunnerOptions {
  /** Control-plane base URL, e.g. https://acme.app.example.com */
  readonly baseUrl: string;
  /** The tenant's API key. */
  readonly apiKey: string;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Called for heartbeat failures that do not stop the task yet. @default - ignored */
  readonly onHeartbeatError?: (error: unknown) => void;
}

export interface TaskContext {
  readonly lease: Lease;
  /** Aborted when the control plane says stop or the lease is lost; its reason is a TaskStopped. */
  readonly signal: AbortSignal;
}

/**
 * Runs agent tasks under control-plane leases: acquire, heartbeat every `heartbeatSeconds`, abort
 * the task's signal on stop, and release when done. A lease the runner could not renew before its
 * expiry counts as lost: the signal aborts, because the control plane has freed the slot.
 */
export class TaskRunner {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: TaskRunnerOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /**
   * Runs `work` under a lease. Throws AdmissionError when admission denies it; otherwise returns
   * what `work` returns (or throws what it throws), after releasing the lease.
   */
  async run<T>(taskId: string, work: (task: TaskContext) => Promise<T>): Promise<T> {
    const admission = admissionSchema.parse(await this.post('/v1/admission', { taskId }));
    if (admission.decision === 'deny') {
      throw new AdmissionError(`task ${taskId} not admitted: ${admission.reason}`);
    }
    const lease = admission.lease;
    const controller = new AbortController();
    let expiresAt = Date.parse(lease.expiresAt);
    const stop = (reason: string, message: string) => {
      if (!controller.signal.aborted) controller.abort(new TaskStopped(reason, message));
    };
    const beat = async () => {
      try {
        const answer = heartbeatSchema.parse(
          await this.post(`/v1/admission/${encodeURIComponent(taskId)}/heartbeat`),
        );
        if (answer.action === 'stop') stop(answer.reason, answer.detail ?? answer.reason);
        else expiresAt = Date.parse(answer.expiresAt);
      } catch (error) {
        this.options.onHeartbeatError?.(error);
        if (Date.now() >= expiresAt) stop('lease-lost', `lease of task ${taskId} expired unrenewed`);
      }
    };
    let beating: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      beating = beating.then(beat);
    }, lease.heartbeatSeconds * 1000);
    try {
      return await work({ lease, signal: controller.signal });
    } finally {
      clearInterval(timer);
      await beating;
      await this.post(`/v1/admission/${encodeURIComponent(taskId)}/release`).catch((error: unknown) =>
        this.options.onHeartbeatError?.(error),
      );
    }
  }

  private async post(path: string, body: unknown = {}): Promise<unknown> {
    const res = await this.fetch(new URL(path, this.options.baseUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${this.options.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new AdmissionError(`${path} answered ${res.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as unknown;
  }
}

import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { describeTarget, KubeApiError, type KubeTarget, loadKubeConfig, parseKubeTarget } from './config.ts';
import {
  STOP_TASKS_ANNOTATION,
  STOP_WORK_FIELD_MANAGER,
  TENANT_FIELD_MANAGER,
  TENANT_QUOTA_NAME,
} from './names.ts';

/**
 * Background: the Job goes at once and the garbage collector then deletes its Pods (each with its grace
 * period), so a run is not held up by slow pods. Foreground would keep the Job listed (and counted by the
 * quota) until every Pod is gone. The batch/v1 default is Orphan, which leaves the Pods running.
 */
export const JOB_PROPAGATION_POLICY = 'Background';

/** Pod and Job counts of the tenant quota: the two figures that stop or allow new work. */
export interface WorkCounts {
  readonly pods: number;
  readonly jobs: number;
}

const statusSchema = z.object({ message: z.string().optional(), reason: z.string().optional() });

/** JSON Pointer escaping (RFC 6901) for keys with `/` or `~`, as annotations and quota keys have. */
const pointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** One line from a failed call: the HTTP code, the Status reason and message. */
function describeFailure(error: unknown): string {
  if (error instanceof ApiException) {
    let status: z.infer<typeof statusSchema> = {};
    if (typeof error.body === 'string') {
      try {
        status = statusSchema.parse(JSON.parse(error.body));
      } catch {
        status = { message: error.body.replace(/\s+/g, ' ').slice(0, 200) };
      }
    }
    const reason = status.reason ?? (error.code === 401 ? 'Unauthorized' : 'Error');
    const detail =
      status.message && status.message !== reason ? `: ${status.message.replace(/\s+/g, ' ')}` : '';
    return `${error.code} ${reason}${detail}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!;
}

/** A Job that is neither complete nor failed; one not started yet counts, as it would start. */
function isRunning(job: V1Job): boolean {
  const done = (job.status?.conditions ?? []).some(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  return !done && job.status?.completionTime === undefined;
}

/** The tenant chart's YAML as objects, in the order they were rendered (the namespace first). */
export function manifestObjects(yamlText: string): KubernetesObject[] {
  return parseAllDocuments(yamlText)
    .map((doc) => doc.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

/**
 * A tenant's objects in one cluster, through the Kubernetes API. Every failure is a KubeApiError naming the
 * tenant and the object; nothing is retried behind the caller's back.
 */
export class TenantCluster {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;

  constructor(
    kc: KubeConfig,
    /** How the target is named in plans and errors. */
    readonly where: string,
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
  }

  static fromTarget(target: KubeTarget): TenantCluster {
    return new TenantCluster(loadKubeConfig(target), describeTarget(target));
  }

  private async call<T>(tenantId: string, object: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw new KubeApiError(`tenant '${tenantId}': ${object} (${this.where}): ${describeFailure(error)}`);
    }
  }

  /** Server-side apply of each object, forcing ownership of the tenant chart's fields (it is their source). */
  async apply(tenantId: string, manifests: readonly KubernetesObject[]): Promise<string[]> {
    const applied: string[] = [];
    for (const manifest of manifests) {
      const name = objectName(manifest);
      await this.call(tenantId, name, () =>
        this.objects.patch(
          manifest,
          undefined,
          undefined,
          TENANT_FIELD_MANAGER,
          true,
          PatchStrategy.ServerSideApply,
        ),
      );
      applied.push(name);
    }
    return applied;
  }

  /** The pod and job counts of the tenant quota as the cluster holds them. */
  async readWorkCounts(tenantId: string): Promise<WorkCounts> {
    const quota = await this.call(tenantId, quotaName(tenantId), () =>
      this.core.readNamespacedResourceQuota({ name: TENANT_QUOTA_NAME, namespace: tenantId }),
    );
    const hard = quota.spec?.hard ?? {};
    return { pods: Number(hard.pods ?? Number.NaN), jobs: Number(hard['count/jobs.batch'] ?? Number.NaN) };
  }

  /**
   * Sets the quota's pod and job counts. A JSON Patch whose first operation tests the `tenant` label, so the
   * change applies only to an object the tenant chart made for this tenant (RBAC cannot select by label).
   */
  async setWorkCounts(tenantId: string, counts: WorkCounts): Promise<void> {
    await this.call(tenantId, quotaName(tenantId), () =>
      this.core.patchNamespacedResourceQuota(
        {
          name: TENANT_QUOTA_NAME,
          namespace: tenantId,
          fieldManager: STOP_WORK_FIELD_MANAGER,
          body: [
            { op: 'test', path: '/metadata/labels/tenant', value: tenantId },
            { op: 'replace', path: '/spec/hard/pods', value: String(counts.pods) },
            {
              op: 'replace',
              path: `/spec/hard/${pointer('count/jobs.batch')}`,
              value: String(counts.jobs),
            },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    );
  }

  /** Sets or removes the stop-tasks annotation, on a namespace labelled `tenant=<id>` only (see setWorkCounts). */
  async setStopAnnotation(tenantId: string, stopped: boolean): Promise<void> {
    const path = `/metadata/annotations/${pointer(STOP_TASKS_ANNOTATION)}`;
    // JSON Patch `remove` fails on a missing key: add-then-remove makes the removal idempotent.
    const change = stopped
      ? [{ op: 'add', path, value: 'true' }]
      : [
          { op: 'add', path, value: 'false' },
          { op: 'remove', path },
        ];
    await this.call(tenantId, `Namespace ${tenantId}`, () =>
      this.core.patchNamespace(
        {
          name: tenantId,
          fieldManager: STOP_WORK_FIELD_MANAGER,
          body: [{ op: 'test', path: '/metadata/labels/tenant', value: tenantId }, ...change],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    );
  }

  /** Names of the Jobs in the tenant's namespace that are still running, following list pages. */
  async runningJobs(tenantId: string): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(tenantId, `Jobs in namespace ${tenantId}`, () =>
        this.batch.listNamespacedJob({
          namespace: tenantId,
          limit: 500,
          ...(token ? { _continue: token } : {}),
        }),
      );
      for (const job of page.items) if (isRunning(job)) names.push(job.metadata!.name!);
      token = page.metadata?._continue || undefined;
    } while (token);
    return names.sort();
  }

  /** Deletes one Job and, in the background, its Pods; a Job already gone counts as deleted. */
  async deleteJob(tenantId: string, name: string): Promise<'deleted' | 'gone'> {
    try {
      await this.batch.deleteNamespacedJob({
        name,
        namespace: tenantId,
        propagationPolicy: JOB_PROPAGATION_POLICY,
      });
      return 'deleted';
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return 'gone';
      throw new KubeApiError(
        `tenant '${tenantId}': Job ${tenantId}/${name} (${this.where}): ${describeFailure(error)}`,
      );
    }
  }

  /**
   * Offboarding: deletes the tenant's namespace and, with it, everything inside. Reads it first and refuses a
   * namespace whose `tenant` label does not name this tenant; one already gone counts as deleted.
   */
  async deleteNamespace(tenantId: string): Promise<'deleted' | 'gone'> {
    const where = `Namespace ${tenantId}`;
    let labels: Record<string, string> | undefined;
    try {
      labels = (await this.core.readNamespace({ name: tenantId })).metadata?.labels;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return 'gone';
      throw new KubeApiError(`tenant '${tenantId}': ${where} (${this.where}): ${describeFailure(error)}`);
    }
    if (labels?.tenant !== tenantId) {
      throw new KubeApiError(
        `tenant '${tenantId}': ${where} (${this.where}) is not labelled tenant=${tenantId}; not deleted`,
      );
    }
    await this.call(tenantId, where, () =>
      this.core.deleteNamespace({ name: tenantId, propagationPolicy: JOB_PROPAGATION_POLICY }),
    );
    return 'deleted';
  }
}

function quotaName(tenantId: string): string {
  return `ResourceQuota ${tenantId}/${TENANT_QUOTA_NAME}`;
}

function objectName(o: KubernetesObject): string {
  const ns = o.metadata?.namespace;
  return `${o.kind} ${ns ? `${ns}/` : ''}${o.metadata?.name ?? '<unnamed>'}`;
}

const clusters = new Map<string, TenantCluster>();

/**
 * The cluster and manifests-file dependencies of a command, from `--kube-api` (or KUBE_API) and
 * `--manifests-dir`. Outside a cluster the rendered files are kept (default directory unless one is named);
 * in a pod, whose root filesystem is read-only, only the API is used unless a directory is named.
 */
export function clusterDeps(
  kubeApi: string | undefined,
  manifestsDir: string | undefined,
  defaultDir: string,
): { kube?: TenantCluster; manifestsDir?: string } {
  const target = parseKubeTarget(kubeApi);
  const dir = manifestsDir ?? (target?.mode === 'in-cluster' ? undefined : defaultDir);
  if (!target) return dir === undefined ? {} : { manifestsDir: dir };
  const key = describeTarget(target);
  const kube = clusters.get(key) ?? TenantCluster.fromTarget(target);
  clusters.set(key, kube);
  return dir === undefined ? { kube } : { kube, manifestsDir: dir };
}

import { KubeConfig } from '@kubernetes/client-node';

/** Thrown for a Kubernetes API failure or a bad target; one line naming the tenant and the object. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
}

/**
 * Where tenant changes go: the cluster the process runs in (its ServiceAccount token), or a kubeconfig
 * context for runs from an operator's machine.
 */
export type KubeTarget =
  | { readonly mode: 'in-cluster' }
  | { readonly mode: 'context'; readonly context: string };

/** The value that turns the Kubernetes API off even inside a cluster: files are rendered only. */
export const KUBE_API_OFF = 'none';

/**
 * `--kube-api` / `KUBE_API`: `in-cluster`, a kubeconfig context name, or `none`. Unset means in-cluster when
 * the process runs in a pod (the kubelet sets KUBERNETES_SERVICE_HOST), and render-only elsewhere.
 */
export function parseKubeTarget(
  value: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): KubeTarget | null {
  const given = value?.trim();
  if (given === undefined || given === '') {
    return env.KUBERNETES_SERVICE_HOST ? { mode: 'in-cluster' } : null;
  }
  if (given === KUBE_API_OFF) return null;
  if (given === 'in-cluster') return { mode: 'in-cluster' };
  if (!/^[\w.@:/-]+$/.test(given)) {
    throw new KubeApiError(`'--kube-api' ('${given}') must be in-cluster, none or a kubeconfig context name`);
  }
  return { mode: 'context', context: given };
}

export interface LoadOptions {
  /** Root under which the ServiceAccount files are read (tests). @default '' (the pod's /var/run/secrets) */
  readonly serviceAccountRoot?: string;
  /** Environment holding KUBERNETES_SERVICE_HOST/PORT and KUBECONFIG. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** Loads the client configuration for a target; a missing context or service address is one line. */
export function loadKubeConfig(target: KubeTarget, options: LoadOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  if (target.mode === 'in-cluster') {
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new KubeApiError(
        "'--kube-api in-cluster' needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set in every pod)",
      );
    }
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    // loadFromCluster reads process.env; lend it the given environment for the call.
    process.env.KUBERNETES_SERVICE_HOST = env.KUBERNETES_SERVICE_HOST;
    process.env.KUBERNETES_SERVICE_PORT = env.KUBERNETES_SERVICE_PORT;
    try {
      kc.loadFromCluster(options.serviceAccountRoot ?? '');
    } finally {
      restore('KUBERNETES_SERVICE_HOST', saved.host);
      restore('KUBERNETES_SERVICE_PORT', saved.port);
    }
    return kc;
  }
  try {
    if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0]!);
    else kc.loadFromDefault();
  } catch (error) {
    throw new KubeApiError(`cannot read the kubeconfig: ${error instanceof Error ? error.message : error}`);
  }
  if (kc.getContextObject(target.context) === null) {
    throw new KubeApiError(
      `kubeconfig has no context '${target.context}' (contexts: ${kc.contexts.map((c) => c.name).join(', ') || 'none'})`,
    );
  }
  kc.setCurrentContext(target.context);
  return kc;
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** Words for logs and plans: `in-cluster` or `context <name>`. */
export function describeTarget(target: KubeTarget): string {
  return target.mode === 'in-cluster' ? 'in-cluster' : `context ${target.context}`;
}

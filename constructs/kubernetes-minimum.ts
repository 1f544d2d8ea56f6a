/** One API a chart uses whose stable release is a floor for the cluster version. */
export interface StableSince {
  readonly apiVersion: string;
  readonly kind: string;
  /** A field under `spec` whose presence is what needs the version; absent, the kind itself does. */
  readonly specField?: string;
  /** Kubernetes 1.<minor> made it stable. */
  readonly minor: number;
  readonly source: string;
}

/** The floors the charts can meet; each with the page that dates it. */
export const STABLE_SINCE: readonly StableSince[] = [
  {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    minor: 30,
    source:
      'https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/ (v1.30 [stable])',
  },
  {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    minor: 30,
    source:
      'https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/ (v1.30 [stable])',
  },
  {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    specField: 'timeZone',
    minor: 27,
    source: 'KEP-3140, https://github.com/kubernetes/enhancements/issues/3140 (stable in 1.27)',
  },
];

/** The highest floor the manifests meet, with the API that sets it; `undefined` when none applies. */
export function minimumKubernetes(
  manifests: readonly Record<string, unknown>[],
): { version: string; because: StableSince } | undefined {
  let highest: StableSince | undefined;
  for (const manifest of manifests) {
    for (const floor of STABLE_SINCE) {
      if (manifest.apiVersion !== floor.apiVersion || manifest.kind !== floor.kind) continue;
      const spec = (manifest.spec ?? {}) as Record<string, unknown>;
      if (floor.specField !== undefined && spec[floor.specField] === undefined) continue;
      if (highest === undefined || floor.minor > highest.minor) highest = floor;
    }
  }
  return highest === undefined ? undefined : { version: `1.${highest.minor}`, because: highest };
}

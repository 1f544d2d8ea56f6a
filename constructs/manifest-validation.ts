/** One manifest that failed the Kubernetes OpenAPI schema, with the validator's message. */
export interface ManifestFinding {
  readonly manifest: string;
  readonly message: string;
}

interface ValidatingModel {
  validate(): void;
}
type ModelClass = new (data: unknown) => ValidatingModel;

/** `apps/v1` -> `kubernetes-models/apps/v1`; core `v1` -> `kubernetes-models/v1`. */
function modulePath(apiVersion: string): string {
  return `kubernetes-models/${apiVersion}`;
}

export function manifestName(manifest: Record<string, unknown>): string {
  const metadata = (manifest.metadata ?? {}) as { name?: string; namespace?: string };
  const where = metadata.namespace === undefined ? '' : `${metadata.namespace}/`;
  return `${String(manifest.kind)} ${where}${metadata.name ?? '<unnamed>'}`;
}

/**
 * Validates each manifest against the JSON schema kubernetes-models generates from the Kubernetes OpenAPI document
 * (its 5.x line carries the 1.34 API, a superset of what the charts use on 1.33). An unknown kind is a finding.
 */
export async function validateManifests(
  manifests: readonly Record<string, unknown>[],
): Promise<ManifestFinding[]> {
  const findings: ManifestFinding[] = [];
  for (const manifest of manifests) {
    const name = manifestName(manifest);
    const apiVersion = String(manifest.apiVersion ?? '');
    const kind = String(manifest.kind ?? '');
    let Model: ModelClass | undefined;
    try {
      const module = (await import(modulePath(apiVersion))) as Record<string, ModelClass>;
      Model = module[kind];
    } catch {
      Model = undefined;
    }
    if (Model === undefined) {
      findings.push({ manifest: name, message: `no schema for ${apiVersion} ${kind}` });
      continue;
    }
    try {
      new Model(manifest).validate();
    } catch (error) {
      findings.push({ manifest: name, message: error instanceof Error ? error.message : String(error) });
    }
  }
  return findings;
}

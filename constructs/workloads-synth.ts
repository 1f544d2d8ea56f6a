import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { z } from 'zod';
import { ConfigError, loadEnvironmentConfig } from '../config/environments.ts';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { loadBalancerSourceCidr } from './ingress-source.ts';
import { type ManifestFinding, manifestName, validateManifests } from './manifest-validation.ts';
import {
  type PlatformWorkloadsProps,
  renderPlatformWorkloads,
  type WorkloadsTarget,
} from './platform-workloads.ts';

/** What a self-hosted customer gives (`--values <file>`, JSON or YAML); nothing of AWS. */
export const selfHostedValuesSchema = z
  .object({
    image: z.string().min(1),
    domain: z
      .string()
      .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a lowercase DNS name'),
    ingressClassName: z.string().min(1).default('nginx'),
    ingressNamespace: z.string().min(1).default('ingress-nginx'),
    /** CIDR of the customer's PostgreSQL and Redis. */
    dataNetworkCidr: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be an IPv4 CIDR'),
    /** TLS Secret in the platform namespace for `*.app.<domain>` and `api.<domain>`. */
    tlsSecretName: z.string().min(1),
    /**
     * Proxies in front of the control plane whose X-Forwarded-For it trusts: a hop count (1 behind one ingress
     * controller) or their CIDRs. `true` is refused: it would trust a forged hop.
     */
    trustProxy: z
      .union(
        [
          z.number().int().min(1).max(10),
          z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}(\s*,\s*\d{1,3}(\.\d{1,3}){3}\/\d{1,2})*$/),
        ],
        { error: "must be a hop count (1 to 10) or the proxies' CIDRs; true would trust forged hops" },
      )
      .default(1)
      .transform(String),
  })
  .strict();

const RENDERED_FILE = /^\d{2}-[a-z0-9-]+\.yaml$/;

export interface SynthK8sOptions {
  readonly target: WorkloadsTarget;
  readonly env: string;
  /** eks: the image URI (the workloads stack passes its DockerImageAsset). */
  readonly image?: string;
  /** self-hosted: the values file. */
  readonly valuesFile?: string;
}

export interface SynthK8sResult {
  readonly files: string[];
  readonly findings: ManifestFinding[];
}

function selfHostedProps(env: ReturnType<typeof loadEnvironmentConfig>, file: string | undefined) {
  if (file === undefined) throw new ConfigError('--target self-hosted needs --values <file>');
  let raw: unknown;
  try {
    // '-' is standard input, for `kubectl run -i` and `docker run -i` where no file can be mounted.
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(
      `cannot read values file ${file}: ${error instanceof Error ? error.message : error}`,
    );
  }
  const parsed = selfHostedValuesSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid values file ${file}: '${issue.path.join('.')}' ${issue.message}`);
  }
  return { ...parsed.data, env: env.name };
}

/** The chart props of one destination, from the env config (eks) or the customer's values (self-hosted). */
export function workloadsProps(options: SynthK8sOptions): PlatformWorkloadsProps {
  const env = loadEnvironmentConfig(options.env);
  if (options.target === 'self-hosted') {
    return {
      target: 'self-hosted',
      sizes: loadWorkloadsConfig(env.name),
      ...selfHostedProps(env, options.valuesFile),
    };
  }
  if (options.image === undefined) throw new ConfigError('--target eks needs --image <uri>');
  return eksWorkloadsProps(env, options.image);
}

/**
 * EKS: the ALB lives in the public subnets, the first /22 of the VPC (constructs/ingress-source.ts). It is the one
 * proxy in front of the pods, so the control plane trusts X-Forwarded-For from that block alone.
 */
export function eksWorkloadsProps(
  env: ReturnType<typeof loadEnvironmentConfig>,
  image: string,
): PlatformWorkloadsProps {
  const loadBalancerCidr = loadBalancerSourceCidr(env.network.cidr);
  return {
    target: 'eks',
    env: env.name,
    image,
    domain: env.domain,
    sizes: loadWorkloadsConfig(env.name),
    dataNetworkCidr: env.network.cidr,
    trustProxy: loadBalancerCidr,
    loadBalancerSourceCidr: loadBalancerCidr,
  };
}

/** The rendered manifests and their schema findings, written nowhere. */
export async function renderValidated(
  options: SynthK8sOptions,
): Promise<{ manifests: Record<string, unknown>[]; findings: ManifestFinding[] }> {
  const manifests = renderPlatformWorkloads(workloadsProps(options));
  return { manifests, findings: await validateManifests(manifests) };
}

/** Every manifest as one multi-document YAML stream, for `kubectl apply -f -`. */
export function yamlStream(manifests: readonly Record<string, unknown>[]): string {
  return manifests.map((m) => stringify(m)).join('---\n');
}

/**
 * Renders the platform workloads, validates every manifest, and only when all pass writes one YAML file per object
 * into `outDir`, numbered in apply order. Only files of an earlier render (`NN-*.yaml`) are replaced; nothing else
 * in the directory is touched, and nothing is written when a manifest fails.
 */
export async function synthK8s(options: SynthK8sOptions, outDir: string): Promise<SynthK8sResult> {
  const { manifests, findings } = await renderValidated(options);
  if (findings.length > 0) return { files: [], findings };
  mkdirSync(outDir, { recursive: true });
  for (const stale of readdirSync(outDir).filter((f) => RENDERED_FILE.test(f))) {
    rmSync(path.join(outDir, stale));
  }
  const files = manifests.map((manifest, i) => {
    const slug = manifestName(manifest)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-');
    const file = path.join(outDir, `${String(i + 1).padStart(2, '0')}-${slug}.yaml`);
    writeFileSync(file, stringify(manifest));
    return file;
  });
  return { files, findings };
}

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { validateManifests } from './manifest-validation.ts';
import {
  CONTROL_PLANE_NAME,
  PlatformWorkloadsError,
  type PlatformWorkloadsProps,
  renderPlatformWorkloads,
} from './platform-workloads.ts';
import { synthK8s } from './workloads-synth.ts';

const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/abc';
const eks = (env: 'dev' | 'staging' | 'prod' = 'prod'): PlatformWorkloadsProps => ({
  target: 'eks',
  env,
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent-platform:1',
  domain: 'agents.example.com',
  sizes: loadWorkloadsConfig(env),
  ingressClassName: 'alb',
  ingressNamespace: 'kube-system',
  dataNetworkCidr: '10.30.0.0/16',
  certificateArn: CERT,
});

// Rendered manifests are deep, loosely typed JSON; the assertions themselves check the shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Manifest = Record<string, any>;
const find = (manifests: Manifest[], kind: string, name: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name === name)!;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('platform workloads chart', () => {
  const manifests = renderPlatformWorkloads(eks()) as Manifest[];
  const deployment = find(manifests, 'Deployment', CONTROL_PLANE_NAME);
  const pod = deployment.spec.template.spec;

  test('every manifest of every environment passes the Kubernetes OpenAPI schema', async () => {
    for (const env of ['dev', 'staging', 'prod'] as const) {
      expect(await validateManifests(renderPlatformWorkloads(eks(env)))).toEqual([]);
    }
  });

  test('a manifest that breaks the schema is reported', async () => {
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].securityContext.runAsUser = 'root';
    const findings = await validateManifests([broken]);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.message).toMatch(/runAsUser must be integer/);
  });

  test('the control plane runs hardened, non-root, read-only', () => {
    const container = pod.containers[0];
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.command).toEqual(['node', 'dist/bin/control-plane.js']);
  });

  test('probes hit /readyz and /healthz, resources come from the config, pods spread over zones', () => {
    const container = pod.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    const sizes = loadWorkloadsConfig('prod').controlPlane;
    expect(container.resources).toEqual({
      requests: { cpu: sizes.cpu.request, memory: sizes.memory.request },
      limits: { cpu: sizes.cpu.limit, memory: sizes.memory.limit },
    });
    expect(pod.topologySpreadConstraints[0].topologyKey).toBe('topology.kubernetes.io/zone');
  });

  test.each(['dev', 'staging', 'prod'] as const)('HPA bounds of %s come from the config', (env) => {
    const hpa = find(
      renderPlatformWorkloads(eks(env)) as Manifest[],
      'HorizontalPodAutoscaler',
      CONTROL_PLANE_NAME,
    );
    const sizes = loadWorkloadsConfig(env).controlPlane;
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([sizes.minReplicas, sizes.maxReplicas]);
  });

  test('the ingress routes the tenant wildcard and the api host, with IP targets and the certificate', () => {
    const ingress = find(manifests, 'Ingress', CONTROL_PLANE_NAME);
    expect(ingress.spec.rules.map((r: Manifest) => r.host)).toEqual([
      '*.app.agents.example.com',
      'api.agents.example.com',
    ]);
    expect(ingress.metadata.annotations['alb.ingress.kubernetes.io/target-type']).toBe('ip');
    expect(ingress.metadata.annotations['alb.ingress.kubernetes.io/certificate-arn']).toBe(CERT);
  });

  test('the cost guard runs four times a day, one at a time, and pings its heartbeat', () => {
    const cron = find(manifests, 'CronJob', 'cost-guard');
    expect(cron.spec.schedule).toBe('17 */6 * * *');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    expect(cron.spec.jobTemplate.spec.template.spec.containers[0].command.slice(0, 3)).toEqual([
      'node',
      'dist/bin/with-heartbeat.js',
      '--',
    ]);
  });

  test('the drill CronJob exists only where the config schedules it (staging)', () => {
    expect(manifests.some((m) => m.metadata.name === 'dr-drill')).toBe(false);
    expect(
      find(renderPlatformWorkloads(eks('staging')) as Manifest[], 'CronJob', 'dr-drill').spec.schedule,
    ).toBe(loadWorkloadsConfig('staging').drillSchedule);
  });

  test('the namespace denies by default and the control plane takes traffic only from the ingress controller', () => {
    const deny = find(manifests, 'NetworkPolicy', 'default-deny');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const cp = find(manifests, 'NetworkPolicy', 'control-plane');
    expect(cp.spec.ingress).toEqual([
      {
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  test('no manifest carries a secret value, only references', () => {
    expect(manifests.some((m) => m.kind === 'Secret')).toBe(false);
    const env = pod.containers[0].env.map((e: Manifest) => e.name);
    expect(env).not.toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET']));
    expect(pod.containers[0].envFrom).toEqual([{ secretRef: { name: 'platform-env' } }]);
  });

  test('eks without a certificate is refused with the prop named', () => {
    expect(() => renderPlatformWorkloads({ ...eks(), certificateArn: undefined })).toThrow(
      PlatformWorkloadsError,
    );
    expect(() => renderPlatformWorkloads({ ...eks(), certificateArn: undefined })).toThrow(
      /'certificateArn'/,
    );
  });
});

describe('synth:k8s --target self-hosted', () => {
  test('writes plain, valid YAML with no AWS in it, from the customer values', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synth-k8s-'));
    dirs.push(dir);
    const values = path.join(dir, 'values.yaml');
    writeFileSync(
      values,
      'image: registry.example.com/agent-platform:1.0.0\ndomain: agents.customer.example\ndataNetworkCidr: 10.50.0.0/16\ntlsSecretName: agent-platform-tls\n',
    );
    writeFileSync(path.join(dir, 'keep.txt'), 'not ours');
    const out = path.join(dir, 'out');
    const result = await synthK8s({ target: 'self-hosted', env: 'prod', valuesFile: values }, out);
    expect(result.findings).toEqual([]);
    const files = readdirSync(out);
    expect(files).toHaveLength(result.files.length);
    const text = files.map((f) => readFileSync(path.join(out, f), 'utf8')).join('\n---\n');
    expect(text).not.toMatch(/amazonaws|arn:aws|alb\.ingress/);
    const ingress = files
      .map((f) => parse(readFileSync(path.join(out, f), 'utf8')))
      .find((m) => m.kind === 'Ingress');
    expect(ingress.spec.tls).toEqual([
      {
        hosts: ['*.app.agents.customer.example', 'api.agents.customer.example'],
        secretName: 'agent-platform-tls',
      },
    ]);
    expect(readdirSync(dir)).toContain('keep.txt');
  });

  test('a values file with an unknown field is refused with one line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synth-k8s-'));
    dirs.push(dir);
    const values = path.join(dir, 'values.json');
    writeFileSync(
      values,
      JSON.stringify({
        image: 'x:1',
        domain: 'a.example.com',
        dataNetworkCidr: '10.0.0.0/8',
        tlsSecretName: 't',
        awsRegion: 'us-east-1',
      }),
    );
    await expect(
      synthK8s({ target: 'self-hosted', env: 'prod', valuesFile: values }, path.join(dir, 'out')),
    ).rejects.toThrow(/invalid values file .*awsRegion|Unrecognized key/);
    expect(readdirSync(dir)).toEqual(['values.json']);
  });
});

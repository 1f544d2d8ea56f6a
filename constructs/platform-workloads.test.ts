import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { loadWorkloadsConfig, nodeHeapLimitMb } from '../config/workloads.ts';
import { loadControlPlaneConfig } from '../control-plane/config.ts';
import { SCHEDULED_JOBS } from '../control-plane/console/health.ts';
import { validateManifests } from './manifest-validation.ts';
import {
  CONTROL_PLANE_NAME,
  DB_WATCHDOG_NAME,
  PlatformWorkloadsError,
  type PlatformWorkloadsProps,
  renderPlatformWorkloads,
} from './platform-workloads.ts';
import { synthK8s } from './workloads-synth.ts';

const eks = (env: 'dev' | 'staging' | 'prod' = 'prod'): PlatformWorkloadsProps => ({
  target: 'eks',
  env,
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent-platform:1',
  domain: 'agents.example.com',
  sizes: loadWorkloadsConfig(env),
  dataNetworkCidr: '10.30.0.0/16',
  trustProxy: '10.30.0.0/22',
  loadBalancerSourceCidr: '10.30.0.0/22',
});
const selfHosted = (): PlatformWorkloadsProps => ({
  target: 'self-hosted',
  env: 'prod',
  image: 'registry.example.com/agent-platform:1.0.0',
  domain: 'agents.customer.example',
  sizes: loadWorkloadsConfig('prod'),
  dataNetworkCidr: '10.50.0.0/16',
  trustProxy: '1',
  ingressClassName: 'nginx',
  ingressNamespace: 'ingress-nginx',
  tlsSecretName: 'agent-platform-tls',
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

  test('every manifest of every environment and destination passes the Kubernetes OpenAPI schema', async () => {
    for (const env of ['dev', 'staging', 'prod'] as const) {
      expect(await validateManifests(renderPlatformWorkloads(eks(env)))).toEqual([]);
    }
    expect(await validateManifests(renderPlatformWorkloads(selfHosted()))).toEqual([]);
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
    // The heap ceiling follows the memory limit, so V8 collects before the pod reaches it.
    expect(container.env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-old-space-size=307' });
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

  test('on EKS no Ingress is rendered: the stack owns the ALB and binds its target group to the Service', () => {
    expect(manifests.some((m) => m.kind === 'Ingress')).toBe(false);
  });

  test('self-hosted, the ingress routes the tenant wildcard and the api host with the TLS Secret', () => {
    const ingress = find(renderPlatformWorkloads(selfHosted()) as Manifest[], 'Ingress', CONTROL_PLANE_NAME);
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.rules.map((r: Manifest) => r.host)).toEqual([
      '*.app.agents.customer.example',
      'api.agents.customer.example',
    ]);
    expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({
      name: CONTROL_PLANE_NAME,
      port: { name: 'http' },
    });
  });

  test.each([
    ['eks', eks(), ['10.30.0.0/22']],
    ['self-hosted', selfHosted(), 1],
  ] as const)(
    'on %s the control plane trusts X-Forwarded-For from its proxies only, in a form its config accepts',
    (_, props, parsed) => {
      const container = find(renderPlatformWorkloads(props) as Manifest[], 'Deployment', CONTROL_PLANE_NAME)
        .spec.template.spec.containers[0];
      const env = Object.fromEntries(container.env.map((e: Manifest) => [e.name, e.value]));
      expect(env.TRUST_PROXY).not.toBe('true');
      const config = loadControlPlaneConfig({ ...env, JWT_SECRET: 'x'.repeat(32) });
      expect(config.TRUST_PROXY).toEqual(parsed);
    },
  );

  test('a trust-everything TRUST_PROXY is refused at render time', () => {
    expect(() => renderPlatformWorkloads({ ...eks(), trustProxy: 'true' })).toThrow(
      /'trustProxy' \('true'\)/,
    );
  });

  test('the cost guard runs four times a day, one at a time, pings its heartbeat and records its runs', () => {
    const cron = find(manifests, 'CronJob', 'cost-guard');
    expect(cron.spec.schedule).toBe('17 */6 * * *');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    expect(cron.spec.jobTemplate.spec.template.spec.containers[0].command.slice(0, 5)).toEqual([
      'node',
      'dist/bin/with-heartbeat.js',
      '--job',
      'cost-guard',
      '--',
    ]);
  });

  test.each([
    ['billing-export', '11 * * * *', ['export']],
    ['billing-reconcile', '41 3 * * *', ['reconcile']],
  ])(
    '%s runs on its schedule with its heartbeat and the Stripe key by reference only',
    (name, schedule, args) => {
      const cron = find(manifests, 'CronJob', name);
      expect(cron.spec).toMatchObject({ schedule, concurrencyPolicy: 'Forbid', timeZone: 'Etc/UTC' });
      const pod = cron.spec.jobTemplate.spec.template.spec;
      expect(pod.serviceAccountName).toBe('cost-guard');
      const container = pod.containers[0];
      expect(container.command).toEqual([
        'node',
        'dist/bin/with-heartbeat.js',
        '--job',
        name,
        '--',
        'node',
        'dist/bin/billing.js',
        '--env',
        'prod',
        ...args,
      ]);
      expect(container.env).toEqual(
        expect.arrayContaining([
          {
            name: 'HEARTBEAT_URL',
            valueFrom: { secretKeyRef: { name: 'platform-heartbeats', key: name, optional: true } },
          },
          {
            name: 'STRIPE_API_KEY',
            valueFrom: { secretKeyRef: { name: 'platform-env', key: 'STRIPE_API_KEY' } },
          },
        ]),
      );
      expect(JSON.stringify(cron)).not.toMatch(/sk_(live|test)_/);
      const policy = find(manifests, 'NetworkPolicy', name);
      expect(policy.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': name } });
      expect(policy.spec.ingress).toBeUndefined();
      // A self-hosted customer's cluster does not bill through our Stripe account.
      const selfHostedNames = (renderPlatformWorkloads(selfHosted()) as Manifest[]).map(
        (m) => m.metadata.name,
      );
      expect(selfHostedNames).not.toContain(name);
    },
  );

  test("every CronJob of the chart records its runs under its own name, and the console's Health page lists it", () => {
    const crons = (renderPlatformWorkloads(eks('staging')) as Manifest[]).filter((m) => m.kind === 'CronJob');
    for (const cron of crons) {
      const command = cron.spec.jobTemplate.spec.template.spec.containers[0].command as string[];
      expect(command.slice(0, 4)).toEqual([
        'node',
        'dist/bin/with-heartbeat.js',
        '--job',
        cron.metadata.name,
      ]);
    }
    expect(crons.map((c) => c.metadata.name).sort()).toEqual([...SCHEDULED_JOBS].sort());
  });

  test('the drill CronJob exists only where the config schedules it (staging)', () => {
    expect(manifests.some((m) => m.metadata.name === 'dr-drill')).toBe(false);
    expect(
      find(renderPlatformWorkloads(eks('staging')) as Manifest[], 'CronJob', 'dr-drill').spec.schedule,
    ).toBe(loadWorkloadsConfig('staging').drillSchedule);
  });

  test('the namespace denies by default; on EKS the control plane takes traffic only from the ALB subnets', () => {
    const deny = find(manifests, 'NetworkPolicy', 'default-deny');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const cp = find(manifests, 'NetworkPolicy', 'control-plane');
    expect(cp.spec.ingress).toEqual([
      { from: [{ ipBlock: { cidr: '10.30.0.0/22' } }], ports: [{ protocol: 'TCP', port: 8080 }] },
    ]);
  });

  test('self-hosted, the control plane takes traffic only from the ingress controller namespace', () => {
    const cp = find(renderPlatformWorkloads(selfHosted()) as Manifest[], 'NetworkPolicy', 'control-plane');
    expect(cp.spec.ingress).toEqual([
      {
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  test('self-hosted has no cost guard: its billing evidence is Cost Explorer', () => {
    const rendered = renderPlatformWorkloads(selfHosted()) as Manifest[];
    expect(rendered.filter((m) => /cost-guard/.test(m.metadata.name)).map((m) => m.kind)).toEqual([]);
  });

  test.each([
    ['eks', eks()],
    ['self-hosted', selfHosted()],
  ] as const)(
    'on %s the db watchdog runs hardened, alone, with DATABASE_URL only and no API token',
    (_, props) => {
      const rendered = renderPlatformWorkloads(props) as Manifest[];
      const watchdog = find(rendered, 'Deployment', DB_WATCHDOG_NAME);
      expect(watchdog.spec.replicas).toBe(1);
      const spec = watchdog.spec.template.spec;
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      const container = spec.containers[0];
      expect(container.command).toEqual(['node', 'dist/bin/db-watchdog.js']);
      expect(container.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container.envFrom).toBeUndefined();
      expect(container.env.filter((e: Manifest) => e.valueFrom)).toEqual([
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'platform-env', key: 'DATABASE_URL' } } },
      ]);
      expect(container.env).toContainEqual({
        name: 'NODE_OPTIONS',
        value: `--max-old-space-size=${nodeHeapLimitMb(props.sizes.dbWatchdog.memory.limit)}`,
      });
      expect(container.resources.limits).toEqual({
        cpu: props.sizes.dbWatchdog.cpu.limit,
        memory: props.sizes.dbWatchdog.memory.limit,
      });
      const policy = find(rendered, 'NetworkPolicy', DB_WATCHDOG_NAME);
      expect(policy.spec).toEqual({
        podSelector: { matchLabels: { 'app.kubernetes.io/name': DB_WATCHDOG_NAME } },
        policyTypes: ['Ingress', 'Egress'],
        egress: [
          { to: [{ ipBlock: { cidr: props.dataNetworkCidr } }], ports: [{ protocol: 'TCP', port: 5432 }] },
        ],
      });
    },
  );

  test('no manifest carries a secret value, only references', () => {
    expect(manifests.some((m) => m.kind === 'Secret')).toBe(false);
    const env = pod.containers[0].env.map((e: Manifest) => e.name);
    expect(env).not.toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET']));
    expect(pod.containers[0].envFrom).toEqual([{ secretRef: { name: 'platform-env' } }]);
  });

  test('eks without the load balancer CIDR is refused with the prop named', () => {
    const props = { ...eks(), loadBalancerSourceCidr: undefined };
    expect(() => renderPlatformWorkloads(props)).toThrow(PlatformWorkloadsError);
    expect(() => renderPlatformWorkloads(props)).toThrow(/'loadBalancerSourceCidr'/);
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

  test('a values file that trusts every proxy is refused with one line, and nothing is written', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synth-k8s-'));
    dirs.push(dir);
    const values = path.join(dir, 'values.yaml');
    writeFileSync(
      values,
      'image: x:1\ndomain: a.example.com\ndataNetworkCidr: 10.0.0.0/8\ntlsSecretName: t\ntrustProxy: true\n',
    );
    await expect(
      synthK8s({ target: 'self-hosted', env: 'prod', valuesFile: values }, path.join(dir, 'out')),
    ).rejects.toThrow(/'trustProxy' must be a hop count .* true would trust forged hops/);
    expect(readdirSync(dir)).toEqual(['values.yaml']);
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

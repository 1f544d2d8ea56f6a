import { describe, expect, test } from 'vitest';
import { loadWorkloadsConfig } from '../config/workloads.ts';
import { loadControlPlaneConfig } from '../control-plane/config.ts';
import { CONTROL_PLANE_NAME, renderPlatformWorkloads } from './platform-workloads.ts';

// Rendered manifests are loosely typed JSON; the assertions check the shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Manifest = Record<string, any>;

describe("the control plane's Deployment environment", () => {
  test.each([
    ['eks', '10.30.0.0/24,10.30.1.0/24', ['10.30.0.0/24', '10.30.1.0/24']],
    ['self-hosted', '1', 1],
  ] as const)('is accepted by the service config, host rules on (%s)', (target, trustProxy, trusted) => {
    const manifests = renderPlatformWorkloads({
      target,
      env: 'prod',
      image: 'registry.example.com/agent-platform:1',
      domain: 'agents.example.com',
      sizes: loadWorkloadsConfig('prod'),
      dataNetworkCidr: '10.30.0.0/16',
      trustProxy,
      ...(target === 'eks'
        ? { loadBalancerSourceCidr: '10.30.0.0/23' }
        : {
            ingressClassName: 'nginx',
            ingressNamespace: 'ingress-nginx',
            tlsSecretName: 'agent-platform-tls',
          }),
    }) as Manifest[];
    const deployment = manifests.find(
      (m) => m.kind === 'Deployment' && m.metadata.name === CONTROL_PLANE_NAME,
    )!;
    const container = deployment.spec.template.spec.containers[0];
    const plain = Object.fromEntries(
      (container.env as { name: string; value?: string }[])
        .filter((e) => e.value !== undefined)
        .map((e) => [e.name, e.value!]),
    );
    // What the platform-env Secret adds at run time.
    const fromSecret = { JWT_SECRET: 's'.repeat(40), DATABASE_URL: 'postgres://db.internal/catalog' };
    const config = loadControlPlaneConfig({ ...plain, ...fromSecret });
    expect(config.PUBLIC_DOMAIN).toBe('agents.example.com');
    expect(config.TRUST_PROXY).toEqual(trusted);
  });
});

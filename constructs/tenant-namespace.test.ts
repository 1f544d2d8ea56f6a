import { Testing } from 'cdk8s';
import { describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { getTier, TIERS } from '../tenants/tiers.ts';
import { loadBalancerSourceCidr } from './ingress-source.ts';
import {
  renderTenantManifests,
  TenantNamespaceChart,
  type TenantNamespaceProps,
} from './tenant-namespace.ts';

// biome-ignore lint/suspicious/noExplicitAny: synthesized manifests are plain JSON
type Manifest = any;

function synth(props: Partial<TenantNamespaceProps> = {}): Manifest[] {
  const chart = new TenantNamespaceChart(Testing.app(), 'tenant', {
    tenantId: 'acme',
    tier: getTier('pro'),
    hostname: 'acme.app.dev.agents.example.com',
    ...props,
  });
  return Testing.synth(chart);
}

function byKind(manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
}

describe('namespace', () => {
  test('carries the tenant and app.kubernetes.io labels and the hostname', () => {
    const ns = byKind(synth(), 'Namespace');
    expect(ns.metadata.name).toBe('acme');
    expect(ns.metadata.namespace).toBeUndefined();
    expect(ns.metadata.labels).toMatchObject({
      tenant: 'acme',
      'app.kubernetes.io/instance': 'acme',
      'app.kubernetes.io/part-of': 'agent-platform',
      'app.kubernetes.io/managed-by': 'agent-platform-tenants',
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    expect(ns.metadata.annotations['agent-platform.io/hostname']).toBe('acme.app.dev.agents.example.com');
  });

  test('every namespaced object sits in the tenant namespace with the tenant label', () => {
    for (const m of synth().filter((x) => x.kind !== 'Namespace')) {
      expect(m.metadata.namespace).toBe('acme');
      expect(m.metadata.labels.tenant).toBe('acme');
    }
  });
});

describe('quota and limit range come from the tier', () => {
  test.each(TIERS.map((t) => [t.name, t] as const))('%s', (_name, tier) => {
    const manifests = synth({ tier });
    const quota = byKind(manifests, 'ResourceQuota');
    expect(quota.spec.hard).toEqual({
      'requests.cpu': tier.kubernetes.requestsCpu,
      'limits.cpu': tier.kubernetes.limitsCpu,
      'requests.memory': tier.kubernetes.requestsMemory,
      'limits.memory': tier.kubernetes.limitsMemory,
      pods: tier.kubernetes.pods,
      'count/jobs.batch': tier.kubernetes.jobs,
    });
    const [limit] = byKind(manifests, 'LimitRange').spec.limits;
    expect(limit).toEqual({
      type: 'Container',
      defaultRequest: {
        cpu: tier.kubernetes.containerDefaultRequestCpu,
        memory: tier.kubernetes.containerDefaultRequestMemory,
      },
      default: {
        cpu: tier.kubernetes.containerDefaultLimitCpu,
        memory: tier.kubernetes.containerDefaultLimitMemory,
      },
      max: { cpu: tier.kubernetes.containerMaxCpu, memory: tier.kubernetes.containerMaxMemory },
    });
  });

  test('quotaOverride of 0 pods and jobs stops new work and keeps the rest of the tier', () => {
    const quota = byKind(synth({ quotaOverride: { pods: 0, jobs: 0 } }), 'ResourceQuota');
    expect(quota.spec.hard.pods).toBe(0);
    expect(quota.spec.hard['count/jobs.batch']).toBe(0);
    expect(quota.spec.hard['limits.cpu']).toBe(getTier('pro').kubernetes.limitsCpu);
  });

  test('quotaOverride may change one count only', () => {
    const quota = byKind(synth({ quotaOverride: { jobs: 0 } }), 'ResourceQuota');
    expect(quota.spec.hard.pods).toBe(getTier('pro').kubernetes.pods);
    expect(quota.spec.hard['count/jobs.batch']).toBe(0);
  });

  test.each([-1, 1.5])('a quotaOverride of %s is refused with the prop named', (pods) => {
    expect(() => synth({ quotaOverride: { pods } })).toThrow(
      new RegExp(`tenant 'acme': 'quotaOverride.pods' \\(${pods}\\) must be a whole number >= 0`),
    );
  });
});

interface Peer {
  readonly namespaceLabels: Record<string, string>;
  /** Pod or endpoint IP. */
  readonly ip: string;
}

function ipInCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
}

// A small evaluator of NetworkPolicy rules, enough for the peers this chart uses.
function peerMatches(rulePeer: Manifest, peer: Peer): boolean {
  if (rulePeer.ipBlock) return ipInCidr(peer.ip, rulePeer.ipBlock.cidr);
  if (rulePeer.podSelector && Object.keys(rulePeer.podSelector).length > 0) return false;
  const wanted: Record<string, string> = rulePeer.namespaceSelector?.matchLabels ?? {};
  return Object.entries(wanted).every(([k, v]) => peer.namespaceLabels[k] === v);
}

function allows(
  rules: Manifest[] | undefined,
  direction: 'from' | 'to',
  peer: Peer,
  protocol: string,
  port: number,
) {
  return (rules ?? []).some(
    (rule) =>
      (rule[direction] ?? []).some((p: Manifest) => peerMatches(p, peer)) &&
      (rule.ports === undefined ||
        rule.ports.some((p: Manifest) => p.protocol === protocol && p.port === port)),
  );
}

describe('network isolation between tenants', () => {
  const policy = byKind(synth({ privateNetworkCidr: '10.10.0.0/16' }), 'NetworkPolicy');
  const otherTenant: Peer = {
    namespaceLabels: { 'kubernetes.io/metadata.name': 'globex', tenant: 'globex' },
    ip: '10.10.40.7',
  };
  // The ALB in a public subnet (10.10.0.0/24 .. 10.10.2.0/24), registering the pod as an IP target.
  const loadBalancer: Peer = { namespaceLabels: {}, ip: '10.10.1.2' };
  // A pod of the platform namespace, on a node in a private subnet.
  const platformPod: Peer = {
    namespaceLabels: { 'kubernetes.io/metadata.name': 'platform' },
    ip: '10.10.40.9',
  };
  const kubeDns: Peer = {
    namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
    ip: '10.10.0.10',
  };
  const database: Peer = { namespaceLabels: {}, ip: '10.10.20.5' };
  const internet: Peer = { namespaceLabels: {}, ip: '93.184.216.34' };

  test('applies to every pod and denies by default in both directions', () => {
    expect(policy.spec.podSelector).toEqual({});
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
  });

  test('ingress is refused from another tenant and the platform on any port, and allowed from the load balancer', () => {
    for (const port of [80, 443, 5432, 8080]) {
      expect(allows(policy.spec.ingress, 'from', otherTenant, 'TCP', port)).toBe(false);
      expect(allows(policy.spec.ingress, 'from', platformPod, 'TCP', port)).toBe(false);
    }
    expect(allows(policy.spec.ingress, 'from', loadBalancer, 'TCP', 8080)).toBe(true);
    expect(allows(policy.spec.ingress, 'from', internet, 'TCP', 443)).toBe(false);
  });

  test('the only ingress peer is the load balancer block of the VPC, from the shared constant', () => {
    const peers = policy.spec.ingress.flatMap((rule: Manifest) => rule.from);
    expect(peers).toEqual([{ ipBlock: { cidr: loadBalancerSourceCidr('10.10.0.0/16') } }]);
    expect(peers[0].ipBlock.cidr).toBe('10.10.0.0/22');
  });

  test('egress only reaches DNS in kube-system, the database and the cache', () => {
    const egress = policy.spec.egress;
    expect(allows(egress, 'to', kubeDns, 'UDP', 53)).toBe(true);
    expect(allows(egress, 'to', kubeDns, 'TCP', 53)).toBe(true);
    expect(allows(egress, 'to', kubeDns, 'TCP', 443)).toBe(false);
    expect(allows(egress, 'to', database, 'TCP', 5432)).toBe(true);
    expect(allows(egress, 'to', database, 'TCP', 6379)).toBe(true);
    expect(allows(egress, 'to', otherTenant, 'TCP', 8080)).toBe(false);
    expect(allows(egress, 'to', otherTenant, 'TCP', 80)).toBe(false);
    expect(allows(egress, 'to', internet, 'TCP', 443)).toBe(false);
    expect(allows(egress, 'to', internet, 'TCP', 5432)).toBe(false);
    expect(egress.every((rule: Manifest) => rule.ports?.length > 0)).toBe(true);
  });
});

describe('renderTenantManifests', () => {
  test('renders the four objects as YAML, the same every time', () => {
    const props = { tenantId: 'initech', tier: getTier('free'), hostname: 'initech.app.example.com' };
    const yaml = renderTenantManifests(props);
    const docs = parseAllDocuments(yaml).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ResourceQuota', 'LimitRange', 'NetworkPolicy']);
    expect(renderTenantManifests(props)).toBe(yaml);
  });
});

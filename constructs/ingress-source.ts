/** Thrown when a VPC CIDR cannot hold the load balancer subnet block. */
export class IngressSourceError extends Error {
  override readonly name = 'IngressSourceError';
}

/**
 * Where tenant traffic comes from. The AWS Load Balancer Controller registers pods as IP targets of an
 * internet-facing ALB in the public subnets, so a pod sees the ALB's own addresses as the source: the public
 * subnets, not a namespace. The network stack lays the public subnets out first, at /24, so they all sit in
 * the first /22 of the VPC (up to four AZs); the tenant NetworkPolicy admits exactly that block, and the
 * platform ingress chart must place its ALB there (`alb.ingress.kubernetes.io/scheme: internet-facing`,
 * `alb.ingress.kubernetes.io/target-type: ip`).
 */
export const INGRESS_SOURCE = {
  controller: 'aws-load-balancer-controller',
  scheme: 'internet-facing',
  targetType: 'ip',
  /** Size of each public subnet. */
  publicSubnetMask: 24,
  /** The block at the start of the VPC that holds every public subnet and nothing else. */
  publicSubnetBlockMask: 22,
} as const;

function toNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function toAddress(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** The CIDR that tenant ingress is admitted from: the first /22 of the VPC, where the ALB lives. */
export function loadBalancerSourceCidr(vpcCidr: string): string {
  const [address, prefix] = vpcCidr.split('/');
  const bits = Number(prefix);
  if (!address || !Number.isInteger(bits) || bits > INGRESS_SOURCE.publicSubnetBlockMask) {
    throw new IngressSourceError(
      `VPC CIDR '${vpcCidr}' must be /${INGRESS_SOURCE.publicSubnetBlockMask} or larger to hold the public subnets`,
    );
  }
  const size = 2 ** (32 - bits);
  const start = Math.floor(toNumber(address) / size) * size;
  return `${toAddress(start)}/${INGRESS_SOURCE.publicSubnetBlockMask}`;
}

/** Whether an IPv4 address or CIDR lies inside a CIDR. */
export function cidrContains(outer: string, inner: string): boolean {
  const [outerAddress, outerPrefix] = outer.split('/');
  const [innerAddress, innerPrefix = '32'] = inner.split('/');
  const outerBits = Number(outerPrefix);
  if (Number(innerPrefix) < outerBits) return false;
  const size = 2 ** (32 - outerBits);
  return Math.floor(toNumber(innerAddress!) / size) === Math.floor(toNumber(outerAddress!) / size);
}

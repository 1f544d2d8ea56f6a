import { KubeConfig } from '@kubernetes/client-node';
import { TenantCluster } from '../cluster.ts';
import { type ContractServerOptions, KubernetesContractServer } from './contract-server.ts';

/** A client configuration for the contract server, the way a kubeconfig context names it. */
export function contractKubeConfig(url: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    // The client refuses plain HTTP unless TLS checks are off; the in-cluster test covers HTTPS with a CA.
    clusters: [{ name: 'contract', server: url, skipTLSVerify: url.startsWith('http:') }],
    users: [{ name: 'tester', token }],
    contexts: [{ name: 'contract', cluster: 'contract', user: 'tester' }],
    currentContext: 'contract',
  });
  return kc;
}

/** A started contract server and a TenantCluster that talks to it. */
export async function startContractCluster(options: Partial<ContractServerOptions> = {}) {
  const token = options.token ?? 'contract-token';
  const server = await KubernetesContractServer.start({ ...options, token });
  const kubeConfig = contractKubeConfig(server.url, token);
  const cluster = new TenantCluster(kubeConfig, 'context contract');
  return { server, cluster, token, kubeConfig };
}

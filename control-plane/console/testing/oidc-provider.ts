import type { Server } from 'node:http';
import { createServer } from 'node:net';
import Provider from 'oidc-provider';

/** A TCP port free on the loopback interface right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export const TEST_CLIENT_ID = 'platform-console';
export const TEST_CLIENT_SECRET = 'console-test-client-secret-0123456789';

export interface TestIdentityProvider {
  readonly issuer: string;
  close(): Promise<void>;
}

/**
 * A real OpenID provider (oidc-provider) on a free port. Accounts sign in on its development login
 * form with any password; the account name picks the role claim: `<name>-admin`, `<name>-viewer`, …,
 * and `nobody` gets no role.
 */
export async function startIdentityProvider(
  redirectUri: string,
  options: { port?: number } = {},
): Promise<TestIdentityProvider> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: TEST_CLIENT_ID,
        client_secret: TEST_CLIENT_SECRET,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    claims: { openid: ['sub'], email: ['email'], profile: ['role'] },
    cookies: { keys: ['identity-provider-test-cookie-key'] },
    pkce: { required: () => true },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => {
        const role = id.split('-').at(-1);
        return {
          sub: id,
          email: `${id}@example.test`,
          ...(role === 'admin' || role === 'operator' || role === 'viewer' ? { role } : {}),
        };
      },
    }),
  });
  const listening = provider.listen(port, '127.0.0.1') as Server;
  await new Promise<void>((resolve) => listening.on('listening', () => resolve()));
  return {
    issuer,
    close: () => new Promise<void>((resolve) => listening.close(() => resolve())),
  };
}

import { randomBytes } from 'node:crypto';
import { ControlPlaneConfigError, loadControlPlaneConfig } from '../control-plane/config.ts';
import {
  startIdentityProvider,
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
} from '../control-plane/console/testing/oidc-provider.ts';
import { startControlPlane } from '../control-plane/start.ts';

// The console on this machine: a local OpenID provider (development login form) and the control plane,
// with the catalog from DATABASE_URL or the embedded PostgreSQL, as `npm run control-plane` uses.
const port = Number(process.env.PORT ?? 8080);
const base = `http://localhost:${port}`;
const idp = await startIdentityProvider(`${base}/console/callback`, { port: port + 1 });
let config: ReturnType<typeof loadControlPlaneConfig>;
try {
  config = loadControlPlaneConfig({
    JWT_SECRET: randomBytes(32).toString('hex'),
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    OIDC_ISSUER_URL: idp.issuer,
    OIDC_CLIENT_ID: TEST_CLIENT_ID,
    OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
    OIDC_ALLOW_HTTP: 'true',
    CONSOLE_PUBLIC_URL: base,
  });
} catch (error) {
  if (!(error instanceof ControlPlaneConfigError)) throw error;
  console.error(`console-local: ${error.message}`);
  await idp.close();
  process.exit(2);
}
const running = await startControlPlane(config);
console.log(
  `console: ${base}/console/  (sign in as any name ending in -admin, -operator or -viewer, any password)`,
);
console.log(`portal:  ${base}/portal/   (sign in with a tenant's API key)`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void Promise.all([running.close(), idp.close()]).then(() => process.exit(0));
  });
}

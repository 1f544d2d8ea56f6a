import { Command } from 'commander';
import { ConfigError } from '../config/environments.ts';
import { ControlPlaneConfigError, loadControlPlaneConfig } from '../control-plane/config.ts';
import { startControlPlane } from '../control-plane/start.ts';
import { DatabaseUnavailableError } from '../tenants/errors.ts';

// Configuration is environment variables only; the command line takes nothing but --help.
new Command('control-plane')
  .description(
    'The control-plane HTTP service. Configured by environment variables (see control-plane/README.md): ENV, PORT, DATABASE_URL, REDIS_URL, JWT_SECRET | JWT_PUBLIC_KEY | JWT_JWKS_URL and the rest',
  )
  .showHelpAfterError()
  .parse();

// Expected failures are one line and exit 2; anything else is a bug and keeps its stack.
function fail(error: unknown): never {
  if (
    error instanceof ControlPlaneConfigError ||
    error instanceof ConfigError ||
    error instanceof DatabaseUnavailableError
  ) {
    console.error(`control-plane: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

const config = (() => {
  try {
    return loadControlPlaneConfig();
  } catch (error) {
    return fail(error);
  }
})();
const running = await startControlPlane(config).catch(fail);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    running.logger.info({ signal }, 'shutting down: draining requests and flushing usage');
    const timer = setTimeout(() => {
      running.logger.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    running
      .close()
      .then(() => process.exit(0))
      .catch((error) => {
        running.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  });
}

import { App } from 'aws-cdk-lib';
import { ConfigError, loadEnvironmentConfig } from '../config/environments.ts';
import { createPlatform } from '../stacks/platform.ts';

const app = new App();
try {
  createPlatform(app, loadEnvironmentConfig(app.node.tryGetContext('env')));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();

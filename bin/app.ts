import { App } from 'aws-cdk-lib';
import {
  ConfigError,
  deployTargetFrom,
  loadEnvironmentConfig,
  PLACEHOLDER_ACCOUNT,
} from '../config/environments.ts';
import { createPlatform } from '../stacks/platform.ts';

const app = new App();
try {
  const target = deployTargetFrom((key) => app.node.tryGetContext(key), process.env);
  const config = loadEnvironmentConfig(app.node.tryGetContext('env'), target);
  if (config.account === PLACEHOLDER_ACCOUNT) {
    if (process.env.CDK_DEFAULT_ACCOUNT !== undefined) {
      throw new ConfigError(
        `'account' (${PLACEHOLDER_ACCOUNT}) is the offline placeholder: deploy with -c account=<your 12-digit account id>`,
      );
    }
    console.error(
      `note: no account given, using the offline placeholder ${PLACEHOLDER_ACCOUNT}; deploying these templates is refused (pass -c account=<id> or use the target account's credentials)`,
    );
  }
  createPlatform(app, config);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();

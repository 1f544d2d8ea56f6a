import type { CfnResource } from 'aws-cdk-lib';
import { NagMessageLevel, NagPack, type NagPackProps } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { requiredTags } from './required-tags.ts';

/** Our own rules, run next to AwsSolutionsChecks: `Validations.of(app).addPlugins(new PlatformChecks(app))`. */
export class PlatformChecks extends NagPack {
  readonly name = 'Platform';

  constructor(scope?: IConstruct, props?: NagPackProps) {
    super(scope, props);
    this.packName = 'Platform';
  }

  protected checkResource(node: CfnResource): void {
    this.applyRule({
      info: 'The resource lacks one of the env, app and cost-center tags.',
      explanation:
        'Cost allocation, budgets and the drills IAM conditions all select resources by these tags.',
      level: NagMessageLevel.ERROR,
      rule: requiredTags,
      node,
    });
  }
}

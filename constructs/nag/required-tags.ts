import { type CfnResource, TagManager } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';

import { REQUIRED_TAGS } from '../../config/names.ts';

export { REQUIRED_TAGS };

/** Types CDK's tag manager treats as taggable but whose CloudFormation schema rejects `Tags` (cfn-lint E3002). */
export const UNTAGGABLE_TYPES: readonly string[] = [
  'AWS::RDS::DBProxyTargetGroup',
  'AWS::CloudWatch::Dashboard',
  'AWS::ElasticLoadBalancingV2::Listener',
];

/**
 * Taggable resources carry every required tag with a non-empty value; resources CloudFormation cannot tag are
 * not applicable. Returns the missing keys as findings, so one acknowledgement covers one missing tag.
 */
export function requiredTags(node: CfnResource): NagRuleResult {
  if (UNTAGGABLE_TYPES.includes(node.cfnResourceType)) return NagRuleCompliance.NOT_APPLICABLE;
  if (!TagManager.isTaggable(node) && !TagManager.isTaggableV2(node)) return NagRuleCompliance.NOT_APPLICABLE;
  const tags = TagManager.isTaggable(node) ? node.tags : node.cdkTagManager;
  const values = tags.tagValues();
  const missing = REQUIRED_TAGS.filter((key) => !values[key]);
  return missing.length === 0 ? NagRuleCompliance.COMPLIANT : missing.map((key) => `missing-tag-${key}`);
}
Object.defineProperty(requiredTags, 'name', { value: 'RequiredTags' });

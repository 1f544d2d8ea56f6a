/**
 * The AWS Load Balancer Controller's IAM policy, as its project documents it for the pinned release.
 *
 * Source: the Amazon EKS user guide, "Install AWS Load Balancer Controller with Helm"
 * (https://docs.aws.amazon.com/eks/latest/userguide/lbc-helm.html), step 1, which downloads
 * `docs/install/iam_policy.json` of the controller's release tag (kubernetes-sigs/aws-load-balancer-controller,
 * here v2.17.1) and grants it through EKS Pod Identity. aws-cdk-lib carries the same document for its own
 * AlbController (`aws-eks-v2/lib/addons/alb-iam_policy-v2.17.1.json`); stacks/lb-controller-policy.test.ts fails
 * when the statements below differ from it, so a version bump is one edit here plus the test's file name.
 */
export const LB_CONTROLLER = {
  /** Controller release; the policy below is the one published with it. */
  version: 'v2.17.1',
  /** The eks-charts chart that installs that release. */
  chart: 'aws-load-balancer-controller',
  chartVersion: '1.17.1',
  repository: 'https://aws.github.io/eks-charts',
  namespace: 'kube-system',
  serviceAccount: 'aws-load-balancer-controller',
} as const;

/** One statement of the documented policy; `<partition>` stands for the ARN partition. */
export interface ControllerStatement {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly conditions?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

const CLUSTER_TAG = 'elbv2.k8s.aws/cluster';
const SECURITY_GROUPS = 'arn:<partition>:ec2:*:*:security-group/*';
const TAGGABLE_LOAD_BALANCERS = [
  'arn:<partition>:elasticloadbalancing:*:*:targetgroup/*/*',
  'arn:<partition>:elasticloadbalancing:*:*:loadbalancer/net/*/*',
  'arn:<partition>:elasticloadbalancing:*:*:loadbalancer/app/*/*',
];
/** The controller acts on what it created itself: resources tagged with its cluster tag. */
const OWN_RESOURCE = { Null: { [`aws:ResourceTag/${CLUSTER_TAG}`]: 'false' } };
const CREATES_OWN = { Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'false' } };
const KEEPS_OWNER_TAG = {
  Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'true', [`aws:ResourceTag/${CLUSTER_TAG}`]: 'false' },
};

export const LB_CONTROLLER_STATEMENTS: readonly ControllerStatement[] = [
  {
    actions: ['iam:CreateServiceLinkedRole'],
    resources: ['*'],
    conditions: { StringEquals: { 'iam:AWSServiceName': 'elasticloadbalancing.amazonaws.com' } },
  },
  {
    actions: [
      'ec2:DescribeAccountAttributes',
      'ec2:DescribeAddresses',
      'ec2:DescribeAvailabilityZones',
      'ec2:DescribeInternetGateways',
      'ec2:DescribeVpcs',
      'ec2:DescribeVpcPeeringConnections',
      'ec2:DescribeSubnets',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeInstances',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeTags',
      'ec2:GetCoipPoolUsage',
      'ec2:DescribeCoipPools',
      'ec2:GetSecurityGroupsForVpc',
      'ec2:DescribeIpamPools',
      'ec2:DescribeRouteTables',
      'elasticloadbalancing:DescribeLoadBalancers',
      'elasticloadbalancing:DescribeLoadBalancerAttributes',
      'elasticloadbalancing:DescribeListeners',
      'elasticloadbalancing:DescribeListenerCertificates',
      'elasticloadbalancing:DescribeSSLPolicies',
      'elasticloadbalancing:DescribeRules',
      'elasticloadbalancing:DescribeTargetGroups',
      'elasticloadbalancing:DescribeTargetGroupAttributes',
      'elasticloadbalancing:DescribeTargetHealth',
      'elasticloadbalancing:DescribeTags',
      'elasticloadbalancing:DescribeTrustStores',
      'elasticloadbalancing:DescribeListenerAttributes',
      'elasticloadbalancing:DescribeCapacityReservation',
    ],
    resources: ['*'],
  },
  {
    actions: [
      'cognito-idp:DescribeUserPoolClient',
      'acm:ListCertificates',
      'acm:DescribeCertificate',
      'iam:ListServerCertificates',
      'iam:GetServerCertificate',
      'waf-regional:GetWebACL',
      'waf-regional:GetWebACLForResource',
      'waf-regional:AssociateWebACL',
      'waf-regional:DisassociateWebACL',
      'wafv2:GetWebACL',
      'wafv2:GetWebACLForResource',
      'wafv2:AssociateWebACL',
      'wafv2:DisassociateWebACL',
      'shield:GetSubscriptionState',
      'shield:DescribeProtection',
      'shield:CreateProtection',
      'shield:DeleteProtection',
    ],
    resources: ['*'],
  },
  { actions: ['ec2:AuthorizeSecurityGroupIngress', 'ec2:RevokeSecurityGroupIngress'], resources: ['*'] },
  { actions: ['ec2:CreateSecurityGroup'], resources: ['*'] },
  {
    actions: ['ec2:CreateTags'],
    resources: [SECURITY_GROUPS],
    conditions: { StringEquals: { 'ec2:CreateAction': 'CreateSecurityGroup' }, ...CREATES_OWN },
  },
  {
    actions: ['ec2:CreateTags', 'ec2:DeleteTags'],
    resources: [SECURITY_GROUPS],
    conditions: KEEPS_OWNER_TAG,
  },
  {
    actions: [
      'ec2:AuthorizeSecurityGroupIngress',
      'ec2:RevokeSecurityGroupIngress',
      'ec2:DeleteSecurityGroup',
    ],
    resources: ['*'],
    conditions: OWN_RESOURCE,
  },
  {
    actions: ['elasticloadbalancing:CreateLoadBalancer', 'elasticloadbalancing:CreateTargetGroup'],
    resources: ['*'],
    conditions: CREATES_OWN,
  },
  {
    actions: [
      'elasticloadbalancing:CreateListener',
      'elasticloadbalancing:DeleteListener',
      'elasticloadbalancing:CreateRule',
      'elasticloadbalancing:DeleteRule',
    ],
    resources: ['*'],
  },
  {
    actions: ['elasticloadbalancing:AddTags', 'elasticloadbalancing:RemoveTags'],
    resources: TAGGABLE_LOAD_BALANCERS,
    conditions: KEEPS_OWNER_TAG,
  },
  {
    actions: ['elasticloadbalancing:AddTags', 'elasticloadbalancing:RemoveTags'],
    resources: [
      'arn:<partition>:elasticloadbalancing:*:*:listener/net/*/*/*',
      'arn:<partition>:elasticloadbalancing:*:*:listener/app/*/*/*',
      'arn:<partition>:elasticloadbalancing:*:*:listener-rule/net/*/*/*',
      'arn:<partition>:elasticloadbalancing:*:*:listener-rule/app/*/*/*',
    ],
  },
  {
    actions: [
      'elasticloadbalancing:ModifyLoadBalancerAttributes',
      'elasticloadbalancing:SetIpAddressType',
      'elasticloadbalancing:SetSecurityGroups',
      'elasticloadbalancing:SetSubnets',
      'elasticloadbalancing:DeleteLoadBalancer',
      'elasticloadbalancing:ModifyTargetGroup',
      'elasticloadbalancing:ModifyTargetGroupAttributes',
      'elasticloadbalancing:DeleteTargetGroup',
      'elasticloadbalancing:ModifyListenerAttributes',
      'elasticloadbalancing:ModifyCapacityReservation',
      'elasticloadbalancing:ModifyIpPools',
    ],
    resources: ['*'],
    conditions: OWN_RESOURCE,
  },
  {
    actions: ['elasticloadbalancing:AddTags'],
    resources: TAGGABLE_LOAD_BALANCERS,
    conditions: {
      StringEquals: { 'elasticloadbalancing:CreateAction': ['CreateTargetGroup', 'CreateLoadBalancer'] },
      ...CREATES_OWN,
    },
  },
  {
    actions: ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'],
    resources: ['arn:<partition>:elasticloadbalancing:*:*:targetgroup/*/*'],
  },
  {
    actions: [
      'elasticloadbalancing:SetWebAcl',
      'elasticloadbalancing:ModifyListener',
      'elasticloadbalancing:AddListenerCertificates',
      'elasticloadbalancing:RemoveListenerCertificates',
      'elasticloadbalancing:ModifyRule',
      'elasticloadbalancing:SetRulePriorities',
    ],
    resources: ['*'],
  },
];

/** The statements with the partition filled in, in the policy document's JSON shape. */
export function lbControllerPolicyJson(partition: string): Record<string, unknown>[] {
  return LB_CONTROLLER_STATEMENTS.map((s) => ({
    Effect: 'Allow',
    Action: [...s.actions],
    Resource: s.resources.map((r) => r.replace('<partition>', partition)),
    ...(s.conditions ? { Condition: s.conditions } : {}),
  }));
}

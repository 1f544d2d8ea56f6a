import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { expect, test } from 'vitest';
import { ConfigError } from '../config/environments.ts';
import { logRetention } from './retention.ts';

test('accepts a retention CloudWatch Logs offers', () => {
  expect(logRetention(90, 'network.flowLogRetentionDays')).toBe(RetentionDays.THREE_MONTHS);
});

test('rejects any other day count with one line naming the field and value', () => {
  expect(() => logRetention(8, 'network.flowLogRetentionDays')).toThrow(ConfigError);
  expect(() => logRetention(8, 'network.flowLogRetentionDays')).toThrow(
    /^'network\.flowLogRetentionDays' \(8\) must be a CloudWatch Logs retention: 1, 3, 5, 7,/,
  );
});

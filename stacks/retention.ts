import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { ConfigError } from '../config/environments.ts';

const ALLOWED = new Set<number>(
  Object.values(RetentionDays).filter((v): v is number => typeof v === 'number' && v > 0),
);

/** A CloudWatch Logs retention from a config field; CloudWatch accepts only a fixed set of day counts. */
export function logRetention(days: number, field: string): RetentionDays {
  if (!ALLOWED.has(days)) {
    throw new ConfigError(
      `'${field}' (${days}) must be a CloudWatch Logs retention: ${[...ALLOWED].sort((a, b) => a - b).join(', ')}`,
    );
  }
  return days as RetentionDays;
}

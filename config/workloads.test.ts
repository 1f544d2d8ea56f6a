import { describe, expect, test } from 'vitest';
import { ConfigError } from './environments.ts';
import { loadWorkloadsConfig, nodeHeapLimitMb } from './workloads.ts';

describe('nodeHeapLimitMb', () => {
  test.each([
    ['512Mi', 307],
    ['192Mi', 115],
    ['1Gi', 614],
    ['1.5Gi', 921],
  ])('a %s limit gives V8 an old space of %i MiB', (limit, mb) => {
    expect(nodeHeapLimitMb(limit)).toBe(mb);
  });

  test.each(['512M', '536870912', '500m', ''])('refuses %j in one line', (limit) => {
    expect(() => nodeHeapLimitMb(limit)).toThrow(ConfigError);
    expect(() => nodeHeapLimitMb(limit)).toThrow(`memory limit '${limit}' must be in Mi or Gi`);
  });

  test('every environment sizes its Node.js containers in units the heap ceiling can use', () => {
    for (const env of ['dev', 'staging', 'prod'] as const) {
      const sizes = loadWorkloadsConfig(env);
      for (const limit of [sizes.controlPlane.memory.limit, sizes.dbWatchdog.memory.limit]) {
        expect(nodeHeapLimitMb(limit)).toBeGreaterThan(64);
      }
    }
  });
});

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { sdkCallsFrom } from './testing/sdk-calls.ts';
import { actionsFor, WORKLOAD_ACTIONS, type Workload } from './workload-actions.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKLOADS = Object.keys(WORKLOAD_ACTIONS) as Workload[];

describe.each(WORKLOADS)('%s', (workload) => {
  const { entryPoints, calls } = WORKLOAD_ACTIONS[workload];
  const sent = sdkCallsFrom(ROOT, entryPoints);

  test('every SDK command its code sends is in its list', () => {
    const missing = sent.filter((c) => calls[c.call] === undefined).map((c) => `${c.call} in ${c.file}`);
    expect(missing).toEqual([]);
  });

  test('its list holds no call its code no longer sends', () => {
    const sentCalls = new Set(sent.map((c) => c.call));
    expect(Object.keys(calls).filter((call) => !sentCalls.has(call))).toEqual([]);
  });

  test('a call granted nothing says why', () => {
    for (const [call, permission] of Object.entries(calls)) {
      if (permission.actions.length === 0) expect(permission.notGranted?.length, call).toBeGreaterThan(20);
    }
  });
});

describe('the SDK call scan', () => {
  test('follows imports from the entry point to the module that sends the command', () => {
    const calls = sdkCallsFrom(ROOT, ['bin/cost-guard.ts']);
    expect(calls).toContainEqual({ call: 'client-sns:Publish', file: 'tenants/cost-guard/notify.ts' });
    expect(calls).toContainEqual({
      call: 'client-cost-explorer:GetCostAndUsage',
      file: 'tenants/cost-guard/costs.ts',
    });
  });

  test('finds nothing for a module without AWS calls', () => {
    expect(sdkCallsFrom(ROOT, ['config/names.ts'])).toEqual([]);
  });

  test('a policy that asks for an unlisted call fails', () => {
    expect(() => actionsFor('drills', ['client-rds:ModifyDBInstance'])).toThrow(
      "drills: 'client-rds:ModifyDBInstance' is not in WORKLOAD_ACTIONS",
    );
  });
});

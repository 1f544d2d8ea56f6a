// k6 suite 'peak': VUs ramp to 50 over five tenants, hold, and ramp down.
// Run: mkdir -p reports && k6 run --env BASE_URL=... loadtests/scripts/peak.ts (OPERATOR_TOKEN in the env;
// k6 does not create the report directory). npm run load-gate does both for you.
import { summaryHandler } from '../lib/summary.ts';
import { setupTraffic, type TrafficData, teardownTraffic, trafficIteration } from '../lib/traffic.ts';
import { suiteOptions } from '../suites.ts';

export const options = suiteOptions('peak');

export function setup(): TrafficData {
  return setupTraffic('peak');
}

export function traffic(data: TrafficData): void {
  trafficIteration(data);
}

export function teardown(data: TrafficData): void {
  teardownTraffic(data);
}

export const handleSummary = summaryHandler('peak');

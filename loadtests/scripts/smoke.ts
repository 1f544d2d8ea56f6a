// k6 suite 'smoke': One VU walks every tenant route; any error fails.
// Run: k6 run --env BASE_URL=... loadtests/scripts/smoke.ts (OPERATOR_TOKEN in the environment).
import { summaryHandler } from '../lib/summary.ts';
import { setupTraffic, type TrafficData, teardownTraffic, trafficIteration } from '../lib/traffic.ts';
import { suiteOptions } from '../suites.ts';

export const options = suiteOptions('smoke');

export function setup(): TrafficData {
  return setupTraffic('smoke');
}

export function traffic(data: TrafficData): void {
  trafficIteration(data);
}

export function teardown(data: TrafficData): void {
  teardownTraffic(data);
}

export const handleSummary = summaryHandler('smoke');

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ControlPlaneFixture, createFixture } from '../control-plane/testing/fixture.ts';
import { CONTROL_PLANE_ROUTES } from './runbook-commands.ts';

let fx: ControlPlaneFixture;
let app: FastifyInstance;

beforeAll(async () => {
  fx = await createFixture('routes');
  app = await fx.server({}, { redis: null });
});

afterAll(async () => {
  await fx.close();
});

/** Every `METHOD /path` the server registers, read from fastify's route tree (HEAD is implied by GET). */
function registeredRoutes(server: FastifyInstance): string[] {
  const routes: string[] = [];
  const parents: string[] = [];
  for (const line of server.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    parents.length = depth;
    const path = `${parents.join('')}${match[2]}`;
    parents.push(match[2]!);
    for (const method of (match[3] ?? '').split(', ').filter((m) => m && m !== 'HEAD')) {
      routes.push(`${method} ${path}`);
    }
  }
  return routes.sort();
}

test('the runbook check knows exactly the routes the control plane registers', () => {
  const registered = registeredRoutes(app).filter((r) => !r.endsWith(' *'));
  expect(registered.length).toBeGreaterThan(10);
  expect([...CONTROL_PLANE_ROUTES].sort()).toEqual(registered);
});

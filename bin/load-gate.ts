import { Command } from 'commander';
import { k6CommandLine, LoadGateError, parseRequest, runLoadGate } from '../loadtests/gate.ts';
import { formatSuitesTable, SUITE_NAMES } from '../loadtests/suites.ts';

const program = new Command('load-gate')
  .description(
    `Runs a k6 load gate against the control plane and exits with k6's code (0 pass, 99 thresholds crossed).\n` +
      'Needs OPERATOR_TOKEN, or JWT_SECRET to mint one.',
  )
  .option('--suite <name>', `suite to run: ${SUITE_NAMES.join(', ')}`)
  .option('--base-url <url>', 'control-plane base URL')
  .option('--reports-dir <dir>', 'where the JSON and JUnit reports go', 'reports')
  .option('--dry-run', 'print the k6 command instead of running it')
  .option('--list', 'print the suites as a Markdown table')
  .action(
    async (options: {
      suite?: string;
      baseUrl?: string;
      reportsDir: string;
      dryRun?: boolean;
      list?: boolean;
    }) => {
      if (options.list) {
        console.log(formatSuitesTable());
        return;
      }
      if (!options.suite || !options.baseUrl) throw new LoadGateError('--suite and --base-url are required');
      const request = { suite: options.suite, baseUrl: options.baseUrl, reportsDir: options.reportsDir };
      if (options.dryRun) {
        console.log(k6CommandLine(parseRequest(request)));
        return;
      }
      process.exitCode = await runLoadGate(request);
    },
  );

try {
  await program.parseAsync();
} catch (error) {
  if (!(error instanceof LoadGateError)) throw error;
  console.error(`load-gate: ${error.message}`);
  process.exitCode = 2;
}

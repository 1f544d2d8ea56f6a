import { Command, InvalidArgumentError } from 'commander';
import { jobName, runRecorded } from '../monitors/job-runs.ts';

const program = new Command('with-heartbeat')
  .description(
    'Run a scheduled job: record the run (start, end, exit code) in the catalog at DATABASE_URL (if set), ' +
      "and when it exits 0, GET the BetterStack heartbeat URL in HEARTBEAT_URL (if set). Exits with the command's code",
  )
  .requiredOption('--job <name>', 'the job name the run is recorded under (the CronJob name)', (value) => {
    const parsed = jobName.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]!.message);
    return parsed.data;
  })
  .argument('<command...>', 'the command and its arguments, after --')
  .showHelpAfterError()
  .action(async (command: string[], options: { job: string }) => {
    const [file, ...args] = command;
    const result = await runRecorded({
      job: options.job,
      command: file!,
      args,
      heartbeatUrl: process.env.HEARTBEAT_URL,
      databaseUrl: process.env.DATABASE_URL,
    });
    if (result.heartbeat !== 'sent' && result.heartbeat !== 'skipped') {
      console.error(`with-heartbeat: heartbeat not sent: ${result.heartbeat}`);
    }
    if (result.record !== 'recorded' && result.record !== 'skipped') {
      console.error(`with-heartbeat: run of ${options.job} not recorded in the catalog: ${result.record}`);
    }
    process.exit(result.exitCode);
  });

await program.parseAsync();

import { Command } from 'commander';
import { runWithHeartbeat } from '../monitors/heartbeat.ts';

const program = new Command('with-heartbeat')
  .description('Run a command; when it exits 0, GET the BetterStack heartbeat URL in HEARTBEAT_URL (if set)')
  .argument('<command...>', 'the command and its arguments, after --')
  .showHelpAfterError()
  .action(async (command: string[]) => {
    const [file, ...args] = command;
    const result = await runWithHeartbeat(file!, args, process.env.HEARTBEAT_URL);
    if (result.heartbeat !== 'sent' && result.heartbeat !== 'skipped') {
      console.error(`with-heartbeat: heartbeat not sent: ${result.heartbeat}`);
    }
    process.exit(result.exitCode);
  });

await program.parseAsync();

import { askOnTerminal, EXIT, main } from '../runbooks/drills/cli.ts';

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) {
    process.stderr.write(
      "second interrupt: exiting now; remove leftovers with 'npm run dr-drill -- cleanup --env <env>'\n",
    );
    process.exit(EXIT.interrupted);
  }
  process.stderr.write('interrupted: cleaning up drill resources (Ctrl-C again to exit at once)\n');
  controller.abort();
});

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  ...(process.stdin.isTTY ? { ask: askOnTerminal } : {}),
  signal: controller.signal,
});
process.exit(code);

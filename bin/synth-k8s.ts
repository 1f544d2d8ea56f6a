import { Command, Option } from 'commander';
import { ConfigError } from '../config/environments.ts';
import { PlatformWorkloadsError } from '../constructs/platform-workloads.ts';
import { renderValidated, synthK8s, yamlStream } from '../constructs/workloads-synth.ts';

const program = new Command('synth-k8s')
  .description('Render the platform workloads as plain YAML, validated against the Kubernetes OpenAPI schema')
  .addOption(new Option('--target <target>', 'destination').choices(['eks', 'self-hosted']).default('eks'))
  .option('--env <name>', 'environment config: dev, staging or prod', 'dev')
  .requiredOption(
    '--out <dir>',
    "directory for the YAML files (earlier NN-*.yaml files there are replaced), or '-' for one stream on stdout",
  )
  .option('--image <uri>', 'eks: the platform image URI')
  .option(
    '--values <file>',
    "self-hosted: values file (JSON or YAML, '-' for stdin): image, domain, dataNetworkCidr, tlsSecretName...",
  )
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError()
  .action(
    async (options: {
      target: 'eks' | 'self-hosted';
      env: string;
      out: string;
      image?: string;
      values?: string;
      json?: boolean;
    }) => {
      const synthOptions = {
        target: options.target,
        env: options.env,
        image: options.image,
        valuesFile: options.values,
      };
      try {
        if (options.out === '-') {
          const { manifests, findings } = await renderValidated(synthOptions);
          for (const finding of findings) console.error(`synth-k8s: ${finding.manifest}: ${finding.message}`);
          if (findings.length > 0) process.exit(1);
          process.stdout.write(yamlStream(manifests));
          return;
        }
        const result = await synthK8s(synthOptions, options.out);
        if (options.json) console.log(JSON.stringify(result, null, 2));
        for (const finding of result.findings)
          console.error(`synth-k8s: ${finding.manifest}: ${finding.message}`);
        if (result.findings.length > 0) process.exit(1);
        if (!options.json) {
          console.log(
            `${result.files.length} manifests for ${options.target} (${options.env}) in ${options.out}, all valid`,
          );
        }
      } catch (error) {
        if (error instanceof ConfigError || error instanceof PlatformWorkloadsError) {
          console.error(`synth-k8s: ${error.message}`);
          process.exit(2);
        }
        throw error;
      }
    },
  );

await program.parseAsync();

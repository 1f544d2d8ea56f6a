import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { type DeployTarget, type EnvironmentName, loadEnvironmentConfig } from '../config/environments.ts';
import { createPlatform } from './platform.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Plugins whose findings fail the gate (CDK's own CloudFormation validator only reports deprecations). */
export const GATED_PLUGINS = ['AwsSolutions', 'Platform'] as const;

/** One finding of a validation plugin. */
export interface ValidationFinding {
  readonly plugin: string;
  readonly rule: string;
  readonly severity: string;
  readonly path: string;
}

/** One `Validations.of(x).acknowledge()` in the app. */
export interface Acknowledgement {
  /** Construct path the acknowledgement sits on. */
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

export interface StackTemplate {
  readonly stackName: string;
  readonly templateFile: string;
}

/** What one environment's synth left behind. */
export interface SynthResult {
  readonly env: EnvironmentName;
  readonly outdir: string;
  readonly stacks: readonly StackTemplate[];
  readonly findings: readonly ValidationFinding[];
  readonly acknowledgements: readonly Acknowledgement[];
  /** Context keys the app asked for but nobody gave (a look-up that would need AWS). */
  readonly missingContext: readonly string[];
  readonly durationMs: number;
}

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; severity: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

function readFindings(outdir: string): ValidationFinding[] {
  let report: ValidationReport;
  try {
    report = JSON.parse(
      readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
  } catch {
    return [];
  }
  return report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({
        plugin: plugin.pluginName,
        rule: v.ruleName,
        severity: v.severity,
        path: c.constructPath,
      })),
    ),
  );
}

function collectAcknowledgements(root: IConstruct): Acknowledgement[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );
}

/**
 * Synthesizes one environment in-process, the way `cdk synth -c env=NAME` does (same context from cdk.json),
 * but collects validation findings instead of failing, so tests and the demo can report them.
 */
export function synthesizeEnvironment(
  env: EnvironmentName,
  outdir: string,
  target: DeployTarget = {},
): SynthResult {
  const started = performance.now();
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  // The metadata flags are what the CDK CLI adds; cfn-lint reads aws:cdk:path to recognise generated resources.
  const app = new App({
    outdir,
    context: {
      ...cdkJson.context,
      env,
      'aws:cdk:enable-path-metadata': true,
      'aws:cdk:enable-asset-metadata': true,
      'aws:cdk:version-reporting': true,
    },
  });
  createPlatform(app, loadEnvironmentConfig(env, target));
  let assembly: ReturnType<App['synth']> | undefined;
  try {
    assembly = app.synth();
  } catch (error) {
    // Validation failures still write the templates and validation-report.json; anything else is a bug.
    if (!(error instanceof Error) || !/validation/i.test(`${error.name} ${error.message}`)) throw error;
  }
  const stacks = app.node.children
    .filter(
      (c): c is import('aws-cdk-lib').Stack => (c as { templateFile?: string }).templateFile !== undefined,
    )
    .map((s) => ({ stackName: s.stackName, templateFile: path.join(outdir, s.templateFile) }));
  return {
    env,
    outdir,
    stacks,
    findings: readFindings(outdir),
    acknowledgements: collectAcknowledgements(app),
    missingContext: (assembly?.manifest.missing ?? []).map((m) => m.key),
    durationMs: performance.now() - started,
  };
}

import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';

/** One broken rule of the runtime image, with the line it is on (1-based, 0 for the whole file). */
export interface DockerfileFinding {
  readonly line: number;
  readonly rule: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const NUMERIC_USER = /^(\d+)(:\d+)?$/;

function lineOf(instruction: Instruction): number {
  return instruction.getRange().start.line + 1;
}

/**
 * Checks the rules the runtime image must keep: several stages, every external base pinned by digest, a final stage
 * that installs production dependencies only, runs compiled JavaScript (no tsx) and runs as a non-root numeric user.
 */
export function checkRuntimeDockerfile(content: string): DockerfileFinding[] {
  const dockerfile = DockerfileParser.parse(content);
  const findings: DockerfileFinding[] = [];
  const froms = dockerfile.getFROMs();
  if (froms.length < 2)
    findings.push({ line: 0, rule: 'must be multi-stage (a build stage and a runtime stage)' });

  const stages = new Set<string>();
  for (const from of froms) {
    const image = from.getImageName() ?? '';
    if (!stages.has(image) && !DIGEST.test(from.getImageDigest() ?? '')) {
      findings.push({ line: lineOf(from), rule: `base image '${image}' must be pinned by a sha256 digest` });
    }
    const stage = from.getBuildStage();
    if (stage !== null) stages.add(stage);
  }

  const last = froms.at(-1);
  if (last === undefined) return findings;
  const finalStart = last.getRange().start.line;
  const finalStage = dockerfile.getInstructions().filter((i) => i.getRange().start.line > finalStart);
  const keyword = (name: string) => finalStage.filter((i) => i.getKeyword() === name);

  const installs = keyword('RUN').filter((run) =>
    /\bnpm (ci|install|i)\b/.test(run.getArgumentsContent() ?? ''),
  );
  if (installs.length === 0) {
    findings.push({ line: lineOf(last), rule: 'the runtime stage must install with npm ci --omit=dev' });
  }
  for (const run of installs) {
    const text = run.getArgumentsContent() ?? '';
    if (!/\bnpm ci\b/.test(text) || !/--omit=dev\b/.test(text)) {
      findings.push({ line: lineOf(run), rule: `runtime install must be 'npm ci --omit=dev': ${text}` });
    }
  }

  const users = keyword('USER');
  const user = users.at(-1)?.getArgumentsContent()?.trim() ?? '';
  const uid = NUMERIC_USER.exec(user)?.[1];
  if (uid === undefined || Number(uid) === 0) {
    findings.push({
      line: users.length ? lineOf(users.at(-1)!) : lineOf(last),
      rule: `final USER ('${user}') must be a non-root numeric uid`,
    });
  }

  for (const run of [...keyword('CMD'), ...keyword('ENTRYPOINT'), ...keyword('RUN')]) {
    if (/\btsx\b/.test(run.getArgumentsContent() ?? '')) {
      findings.push({ line: lineOf(run), rule: 'the runtime stage must run compiled JavaScript, not tsx' });
    }
  }
  for (const copy of keyword('COPY') as Copy[]) {
    const sources = copy.getArgumentsContent() ?? '';
    const packageFilesOnly = copy
      .getArguments()
      .slice(0, -1)
      .every((a) => ['package.json', 'package-lock.json'].includes(a.getValue()));
    if (copy.getFromFlag() === null && !packageFilesOnly) {
      findings.push({
        line: lineOf(copy),
        rule: `the runtime stage copies only package files and build output: ${sources}`,
      });
    }
  }
  return findings;
}

import { Testing } from 'cdk8s';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SUITE_NAMES } from '../loadtests/suites.ts';
import {
  LoadTestRunChart,
  LoadTestRunError,
  type LoadTestRunProps,
  renderLoadTestRun,
  SCRIPTS_CONFIG_MAP,
} from './load-test-run.ts';

// biome-ignore lint/suspicious/noExplicitAny: synthesized manifests are plain JSON
type Manifest = any;

const BASE: LoadTestRunProps = {
  suite: 'peak',
  baseUrl: 'http://control-plane.platform.svc:8080/',
  operatorTokenSecret: { name: 'load-gate-operator', key: 'token' },
  parallelism: 3,
};

function synth(props: Partial<LoadTestRunProps> = {}): Manifest[] {
  return Testing.synth(new LoadTestRunChart(Testing.app(), 'load-gate', { ...BASE, ...props }));
}

function byKind(manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
}

let manifests: Manifest[];
beforeAll(() => {
  manifests = synth();
});

describe('TestRun', () => {
  test('is a k6.io/v1alpha1 TestRun with parallelism, the ConfigMap script and the suite arguments', () => {
    const run = byKind(manifests, 'TestRun');
    expect(run.apiVersion).toBe('k6.io/v1alpha1');
    expect(run.metadata).toMatchObject({ name: 'load-gate-peak', namespace: 'load-tests' });
    expect(run.spec.parallelism).toBe(3);
    expect(run.spec.script).toEqual({ configMap: { name: SCRIPTS_CONFIG_MAP, file: 'peak.js' } });
    expect(run.spec.arguments).toBe(
      '--tag suite=peak --env BASE_URL=http://control-plane.platform.svc:8080 --env REPORT_DIR=/tmp',
    );
  });

  test('runners read the operator token from the Secret, never from the manifest', () => {
    const run = byKind(manifests, 'TestRun');
    expect(run.spec.runner.env).toEqual([
      { name: 'OPERATOR_TOKEN', valueFrom: { secretKeyRef: { name: 'load-gate-operator', key: 'token' } } },
    ]);
    expect(run.spec.runner.image).toMatch(/^grafana\/k6:1\.\d+\.\d+$/);
  });

  test('parallelism defaults to 1 and the run name can be set per run', () => {
    const run = byKind(synth({ suite: 'ratelimit', parallelism: undefined, runName: 'gate-42' }), 'TestRun');
    expect(run.spec.parallelism).toBe(1);
    expect(run.metadata.name).toBe('gate-42');
    expect(run.spec.script.configMap.file).toBe('ratelimit.js');
  });
});

describe('scripts ConfigMap', () => {
  test.each(SUITE_NAMES)('holds suite %s bundled into one module that imports only k6', (suite) => {
    const configMap = byKind(manifests, 'ConfigMap');
    expect(configMap.metadata).toMatchObject({ name: SCRIPTS_CONFIG_MAP, namespace: 'load-tests' });
    const source: string = configMap.data[`${suite}.js`];
    const imports = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) expect(specifier).toMatch(/^k6(\/[a-z-]+)?$/);
    expect(source).not.toMatch(/from ["']\.{1,2}\//);
    expect(source).toMatch(/export\s*\{[^}]*\bhandleSummary\b/);
    expect(source).toMatch(/export\s*\{[^}]*\boptions\b/);
    expect(source).toContain(`'${suite}'`);
  });

  test('the ConfigMap is created before the TestRun that reads it', () => {
    const kinds = manifests.map((m) => m.kind);
    expect(kinds.indexOf('ConfigMap')).toBeLessThan(kinds.indexOf('TestRun'));
  });
});

describe('props', () => {
  test.each([
    [
      { suite: 'ratelimit', parallelism: 2 },
      "'parallelism' (2) must be an integer from 1 to 1 for suite 'ratelimit'",
    ],
    [{ suite: 'peak', parallelism: 6 }, "'parallelism' (6) must be an integer from 1 to 5 for suite 'peak'"],
    [{ parallelism: 0 }, "'parallelism' (0) must be an integer from 1 to 5"],
    [{ baseUrl: 'control-plane:8080' }, "'baseUrl' ('control-plane:8080') must be http or https"],
    [{ baseUrl: 'not a url' }, "'baseUrl' ('not a url') is not a URL"],
    [{ suite: 'soak' }, "'suite' ('soak') must be one of smoke, load, peak, ratelimit, isolation"],
  ] as [Partial<LoadTestRunProps>, string][])('refuses %j', (props, message) => {
    expect(() => synth(props)).toThrow(LoadTestRunError);
    expect(() => synth(props)).toThrow(message);
  });
});

test('renderLoadTestRun gives YAML for kubectl apply', () => {
  const docs = parseAllDocuments(renderLoadTestRun({ ...BASE, suite: 'smoke', parallelism: 1 })).map((d) =>
    d.toJSON(),
  );
  expect(docs.map((d) => d.kind)).toEqual(['ConfigMap', 'TestRun']);
  expect(docs[1].spec.script.configMap.file).toBe('smoke.js');
});

import { ApiObject, App, Chart, type ChartProps } from 'cdk8s';
import { KubeConfigMap } from 'cdk8s-plus-28/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { bundleSuite } from '../loadtests/bundle.ts';
import { isSuiteName, SUITE_NAMES, SUITES, type SuiteName } from '../loadtests/suites.ts';

/** Thrown for props the chart cannot render; quotes the offending prop and value. */
export class LoadTestRunError extends Error {
  override readonly name = 'LoadTestRunError';
}

export interface LoadTestRunProps {
  /** Suite the TestRun runs. */
  readonly suite: SuiteName;
  /** Control-plane base URL as seen from inside the cluster, e.g. http://control-plane.platform:8080. */
  readonly baseUrl: string;
  /** Secret holding the operator JWT the suite's setup uses to create tenants. */
  readonly operatorTokenSecret: { readonly name: string; readonly key: string };
  /**
   * Number of k6 runner pods. Each runner gates on its own share, so it may not exceed the suite's maxParallelism.
   * @default 1
   */
  readonly parallelism?: number;
  /**
   * Namespace of the TestRun and its ConfigMap; the k6-operator watches it.
   * @default 'load-tests'
   */
  readonly namespace?: string;
  /**
   * Runner image, a k6 v1.x release.
   * @default 'grafana/k6:1.0.0'
   */
  readonly image?: string;
  /**
   * Name of the TestRun; a TestRun runs once, so give each run its own name.
   * @default - `load-gate-<suite>`
   */
  readonly runName?: string;
}

/** Name of the ConfigMap that holds every suite, bundled, as `<suite>.js`. */
export const SCRIPTS_CONFIG_MAP = 'load-gate-scripts';

/** Where handleSummary writes its files inside a runner pod (the text summary goes to the pod log). */
const RUNNER_REPORT_DIR = '/tmp';

/** Validates the props; returns the base URL normalised (percent-encoded, no trailing slash). */
function validate(props: LoadTestRunProps): string {
  if (!isSuiteName(props.suite)) {
    throw new LoadTestRunError(`'suite' ('${props.suite}') must be one of ${SUITE_NAMES.join(', ')}`);
  }
  const parallelism = props.parallelism ?? 1;
  const max = SUITES[props.suite].maxParallelism;
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > max) {
    throw new LoadTestRunError(
      `'parallelism' (${parallelism}) must be an integer from 1 to ${max} for suite '${props.suite}'`,
    );
  }
  let url: URL;
  try {
    url = new URL(props.baseUrl);
  } catch {
    throw new LoadTestRunError(`'baseUrl' ('${props.baseUrl}') is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LoadTestRunError(`'baseUrl' ('${props.baseUrl}') must be http or https`);
  }
  return url.href.replace(/\/+$/, '');
}

/** A k6-operator TestRun of one load-gate suite, with every suite bundled into a ConfigMap. */
export class LoadTestRunChart extends Chart {
  /** The TestRun object. */
  readonly testRun: ApiObject;
  /** The ConfigMap with the bundled suites. */
  readonly scripts: KubeConfigMap;

  constructor(scope: Construct, id: string, props: LoadTestRunProps, chartProps: ChartProps = {}) {
    const baseUrl = validate(props);
    const labels = {
      'app.kubernetes.io/name': 'load-gate',
      'app.kubernetes.io/part-of': 'agent-platform',
      'app.kubernetes.io/managed-by': 'cdk8s',
    };
    super(scope, id, { ...chartProps, namespace: props.namespace ?? 'load-tests', labels });

    const data: Record<string, string> = {};
    for (const suite of SUITE_NAMES) data[`${suite}.js`] = bundleSuite(suite);
    this.scripts = new KubeConfigMap(this, 'scripts', { metadata: { name: SCRIPTS_CONFIG_MAP }, data });

    const runName = props.runName ?? `load-gate-${props.suite}`;
    this.testRun = new ApiObject(this, 'test-run', {
      apiVersion: 'k6.io/v1alpha1',
      kind: 'TestRun',
      metadata: { name: runName, labels: { 'agent-platform.io/load-gate-suite': props.suite } },
      spec: {
        parallelism: props.parallelism ?? 1,
        script: { configMap: { name: SCRIPTS_CONFIG_MAP, file: `${props.suite}.js` } },
        arguments: [
          `--tag suite=${props.suite}`,
          `--env BASE_URL=${baseUrl}`,
          `--env REPORT_DIR=${RUNNER_REPORT_DIR}`,
        ].join(' '),
        runner: {
          image: props.image ?? 'grafana/k6:1.0.0',
          metadata: { labels: { 'agent-platform.io/load-gate-suite': props.suite } },
          env: [
            {
              name: 'OPERATOR_TOKEN',
              valueFrom: {
                secretKeyRef: { name: props.operatorTokenSecret.name, key: props.operatorTokenSecret.key },
              },
            },
          ],
        },
      },
    });
    this.testRun.addDependency(this.scripts);
  }
}

/** The chart as YAML, for `kubectl apply -f -`. */
export function renderLoadTestRun(props: LoadTestRunProps): string {
  const app = new App();
  new LoadTestRunChart(app, `load-gate-${props.suite}`, props);
  return app.synthYaml();
}

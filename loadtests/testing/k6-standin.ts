// A minimal, synchronous stand-in for the k6 modules the suites import, for tests in Node only.
// k6 cannot be installed here; this lets a test call a suite's setup, scenario functions and teardown
// against a real control plane, to prove the requests and checks match the API. It is not k6:
// one VU, no scenarios or thresholds, and http.batch sends its requests one after another.
import { spawnSync } from 'node:child_process';

interface Params {
  readonly headers?: Record<string, string>;
  readonly tags?: Record<string, string>;
}

export interface StandInResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  json(selector?: string): unknown;
}

interface Recorded {
  readonly checks: { name: string; ok: boolean }[];
  readonly counters: Map<string, number>;
  readonly rates: Map<string, boolean[]>;
  readonly statuses: number[];
}

// Kept on globalThis so a bundled copy of this module and the test's own copy share one record.
const shared = globalThis as typeof globalThis & {
  k6StandIn?: { recorded: Recorded; context: { iteration: number } };
};
shared.k6StandIn ??= {
  recorded: { checks: [], counters: new Map(), rates: new Map(), statuses: [] },
  context: { iteration: 0 },
};

/** What the suite did: every check outcome, custom metric samples and response statuses. */
export const recorded: Recorded = shared.k6StandIn.recorded;

/** Execution context the scripts read through k6/execution. */
export const context: { iteration: number } = shared.k6StandIn.context;

export function resetRecorded(): void {
  recorded.checks.length = 0;
  recorded.counters.clear();
  recorded.rates.clear();
  recorded.statuses.length = 0;
}

export function sleep(seconds: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, seconds * 1000));
}

export function fail(message?: string): never {
  throw new Error(`k6 fail(): ${message ?? ''}`);
}

export function check<T>(value: T, sets: Record<string, (v: T) => boolean>): boolean {
  let all = true;
  for (const [name, predicate] of Object.entries(sets)) {
    const ok = predicate(value) === true;
    recorded.checks.push({ name, ok });
    all &&= ok;
  }
  return all;
}

function request(method: string, url: string, body: string | null, params: Params = {}): StandInResponse {
  // -i puts the header block(s) before the body on stdout, so nothing touches the disk.
  const args = ['-s', '-i', '-X', method, url];
  for (const [name, value] of Object.entries(params.headers ?? {})) args.push('-H', `${name}: ${value}`);
  if (body !== null) args.push('--data-binary', body);
  let rest = spawnSync('curl', args, { encoding: 'utf8' }).stdout;
  let head = '';
  while (rest.startsWith('HTTP/') && rest.includes('\r\n\r\n')) {
    const end = rest.indexOf('\r\n\r\n');
    head = rest.slice(0, end);
    rest = rest.slice(end + 4);
  }
  const [statusLine = '', ...headerLines] = head.split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  const text = rest;
  const status = Number(statusLine.split(' ')[1] ?? 0);
  recorded.statuses.push(status);
  return {
    status,
    headers,
    body: text,
    json(selector) {
      const value: unknown = JSON.parse(text);
      if (selector === undefined) return value;
      return selector
        .split('.')
        .reduce<unknown>((node, key) => (node as Record<string, unknown> | null)?.[key], value);
    },
  };
}

// Marks each transfer's status and headers in curl's --write-out, which runs once per finished transfer
// (a format starting with @ would name a file).
const WRITE_OUT = 'k6-stand-in status=%{http_code} headers=%{header_json} k6-stand-in-end\n';

/**
 * Sends the requests at once (curl --parallel), as k6's batch does, so a rate-limit burst lands in one
 * window. Bodies are not kept, and every request must share one method and one set of params.
 */
function batch(requests: { method: string; url: string; params?: Params }[]): StandInResponse[] {
  const first = requests[0];
  if (first === undefined) return [];
  if (requests.some((r) => r.method !== first.method || r.params !== first.params)) {
    throw new Error('the k6 stand-in batches only requests with one method and one params object');
  }
  const args = ['-s', '--parallel', '--parallel-immediate', '--parallel-max', String(requests.length)];
  args.push('-X', first.method, '-w', WRITE_OUT);
  for (const [name, value] of Object.entries(first.params?.headers ?? {}))
    args.push('-H', `${name}: ${value}`);
  for (const r of requests) args.push('-o', '/dev/null', r.url);
  const out = spawnSync('curl', args, { encoding: 'utf8' }).stdout;
  const transfers = [...out.matchAll(/k6-stand-in status=(\d+) headers=([\s\S]*?) k6-stand-in-end\n/g)];
  if (transfers.length !== requests.length) {
    throw new Error(`curl reported ${transfers.length} of ${requests.length} batched requests`);
  }
  return transfers.map((m) => {
    const status = Number(m[1]);
    recorded.statuses.push(status);
    const headers: Record<string, string> = {};
    for (const [name, values] of Object.entries(JSON.parse(m[2]!) as Record<string, string[]>)) {
      headers[name] = values[0] ?? '';
    }
    return {
      status,
      headers,
      body: '',
      json() {
        throw new Error('the k6 stand-in does not keep bodies of batched requests');
      },
    };
  });
}

export const http = {
  get: (url: string, params?: Params) => request('GET', url, null, params),
  request: (method: string, url: string, body: string | null, params?: Params) =>
    request(method, url, body, params),
  batch: (requests: { method: string; url: string; params?: Params }[]) => batch(requests),
  expectedStatuses: (...statuses: unknown[]) => ({ statuses }),
};

export class Counter {
  constructor(private readonly name: string) {}
  add(value: number): void {
    recorded.counters.set(this.name, (recorded.counters.get(this.name) ?? 0) + value);
  }
}

export class Rate {
  constructor(private readonly name: string) {}
  add(value: boolean | number): void {
    recorded.rates.set(this.name, [...(recorded.rates.get(this.name) ?? []), Boolean(value)]);
  }
}

export const exec = {
  vu: {
    idInTest: 1,
    get iterationInScenario() {
      return context.iteration;
    },
  },
  scenario: {
    get iterationInTest() {
      return context.iteration;
    },
  },
};

export const encoding = {
  b64encode: (input: string, variant?: string) =>
    Buffer.from(input).toString(variant === 'rawurl' || variant === 'url' ? 'base64url' : 'base64'),
};

/**
 * A stand-in `k6` executable (POSIX sh) that models k6 v1's signal handling: the first SIGTERM or SIGINT stops
 * the run gracefully, so it writes the suite's JSON summary (every threshold held), runs teardown and exits 105;
 * a second signal during that stop aborts at once, without summary or teardown. It appends `started`,
 * `teardown` or `hard-abort` to $K6_EVENTS and its pid to $K6_PID_FILE. $K6_STOP_TENTHS is how long the
 * graceful stop takes, in tenths of a second.
 */
export const K6_PROCESS_STANDIN = `#!/bin/sh
report_dir=reports; suite=unknown; prev=
for arg in "$@"; do
  case "$prev:$arg" in
    --env:REPORT_DIR=*) report_dir="\${arg#REPORT_DIR=}" ;;
    --tag:suite=*) suite="\${arg#suite=}" ;;
  esac
  prev="$arg"
done
signals=0
on_signal() {
  signals=$((signals + 1))
  if [ "$signals" -ge 2 ]; then echo hard-abort >> "$K6_EVENTS"; exit 105; fi
}
trap on_signal TERM INT
echo $$ > "$K6_PID_FILE"
echo started >> "$K6_EVENTS"
echo started
while [ "$signals" -eq 0 ]; do sleep 0.05; done
stop=0
while [ "$stop" -lt "\${K6_STOP_TENTHS:-5}" ]; do sleep 0.1; stop=$((stop + 1)); done
mkdir -p "$report_dir"
printf '%s' '{"result":{"suite":"'"$suite"'","passed":true},"k6":{"metrics":{"http_reqs":{"type":"counter","values":{"count":12},"thresholds":{"count>0":{"ok":true}}}},"state":{"testRunDurationMs":1500}}}' > "$report_dir/$suite-summary.json"
echo teardown >> "$K6_EVENTS"
exit 105
`;

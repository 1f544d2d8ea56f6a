import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { evaluatePolicy, policyMatches, selectorMatches } from './admission.ts';

/**
 * A local stand-in for the Kubernetes API server, written from its public documentation, for the calls this
 * project makes. Pages followed (kubernetes.io):
 * - docs/reference/using-api/api-concepts/ (resource paths, list with labelSelector, limit and continue,
 *   PATCH content types, the Status object errors come in)
 * - docs/reference/using-api/server-side-apply/ (apply-patch+yaml, fieldManager required, conflicts, force)
 * - docs/concepts/architecture/garbage-collection/ and docs/tasks/administer-cluster/use-cascading-deletion/
 *   (propagationPolicy Background, Foreground, Orphan)
 * - docs/reference/access-authn-authz/validating-admission-policy/ and
 *   docs/reference/kubernetes-api/policy-resources/validating-admission-policy-binding-v1/ (policies run on
 *   create and update, bindings select namespaces)
 * A JSON Patch that cannot be applied (a failed `test`) is 422, as the API server answers since kubernetes/kubernetes#68346; a batch/v1
 * Job deleted without a policy orphans its Pods (kubernetes/kubernetes#104080 warns about it).
 * Ownership in apply is tracked per leaf field, a simplification of the structured-merge rules.
 */

// biome-ignore lint/suspicious/noExplicitAny: API objects are arbitrary JSON
type Obj = Record<string, any>;

interface Kind {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

const KINDS: readonly Kind[] = [
  { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', version: 'v1', resource: 'resourcequotas', kind: 'ResourceQuota', namespaced: true },
  { group: '', version: 'v1', resource: 'limitranges', kind: 'LimitRange', namespaced: true },
  { group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true },
  { group: 'batch', version: 'v1', resource: 'jobs', kind: 'Job', namespaced: true },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    resource: 'networkpolicies',
    kind: 'NetworkPolicy',
    namespaced: true,
  },
];

const groupVersion = (k: Kind) => (k.group ? `${k.group}/${k.version}` : k.version);

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly contentType: string | undefined;
}

export interface ContractServerOptions {
  /** The bearer token every request must carry. */
  readonly token: string;
  /** ValidatingAdmissionPolicy and Binding objects run on every create and update. @default none */
  readonly admission?: readonly Obj[];
  /** Serve HTTPS with this key and certificate (PEM), as an in-cluster API server does. @default HTTP */
  readonly tls?: { readonly key: string; readonly cert: string };
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: Obj = {},
  ) {
    super(message);
  }
}

const notFound = (k: Kind, name: string) =>
  new ApiError(404, 'NotFound', `${k.resource}${k.group ? `.${k.group}` : ''} "${name}" not found`, {
    name,
    group: k.group,
    kind: k.resource,
  });

/** Separates path keys; label and annotation keys hold dots and slashes. */
const SEP = '\u0001';

/** Leaf paths of an object (arrays are atomic), for field ownership. */
function leaves(value: unknown, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value))
      for (const [p, leaf] of leaves(v, `${prefix}${SEP}${k}`)) out.set(p, leaf);
  } else out.set(prefix, value);
  return out;
}

function getPath(o: Obj, path: string): unknown {
  return path
    .split(SEP)
    .slice(1)
    .reduce<unknown>((at, key) => (at !== null && typeof at === 'object' ? (at as Obj)[key] : undefined), o);
}

function setPath(o: Obj, path: string, value: unknown): void {
  const keys = path.split(SEP).slice(1);
  let at = o;
  for (const key of keys.slice(0, -1)) at = at[key] ??= {};
  at[keys.at(-1)!] = value;
}

function deletePath(o: Obj, path: string): void {
  const keys = path.split(SEP).slice(1);
  const parent = keys.slice(0, -1).reduce<Obj | undefined>((at, k) => at?.[k], o);
  if (parent) delete parent[keys.at(-1)!];
}

/** RFC 7386 merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON Patch (add, remove, replace, test) on a copy; a failed test or missing path is 422. */
function jsonPatch(doc: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops))
    throw new ApiError(400, 'BadRequest', 'a JSON Patch must be an array of operations');
  const out = structuredClone(doc);
  for (const op of ops as Obj[]) {
    const keys = String(op.path)
      .split('/')
      .slice(1)
      .map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const parent = keys.slice(0, -1).reduce<Obj | undefined>((at, k) => at?.[k], out);
    const last = keys.at(-1)!;
    const fail = (why: string) =>
      new ApiError(422, 'Invalid', `the JSON Patch ${op.op} at ${op.path} ${why}`);
    if (parent === undefined || typeof parent !== 'object') throw fail('names a missing parent');
    if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw fail('does not match');
    } else if (op.op === 'add') parent[last] = op.value;
    else if (op.op === 'replace' || op.op === 'remove') {
      if (!(last in parent)) throw fail('names a missing key');
      if (op.op === 'replace') parent[last] = op.value;
      else delete parent[last];
    } else throw new ApiError(400, 'BadRequest', `unsupported JSON Patch op '${op.op}'`);
  }
  return out;
}

/** A label selector string (`a=b,c!=d,e,!f`) as the API server parses it, for lists. */
function parseLabelSelector(text: string): (labels: Record<string, string>) => boolean {
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((term) => {
      const m = /^(!?)([\w./-]+)(?:\s*(==|=|!=)\s*([\w.-]*))?$/.exec(term);
      if (!m) throw new ApiError(400, 'BadRequest', `unable to parse requirement: '${term}'`);
      const [, not, key, op, value] = m;
      return (l: Record<string, string>) =>
        op === undefined
          ? not
            ? !(key! in l)
            : key! in l
          : op === '!='
            ? l[key!] !== value
            : l[key!] === value;
    });
  return (labels) => terms.every((t) => t(labels));
}

interface Stored {
  object: Obj;
  /** Leaf path -> field manager. */
  owners: Map<string, string>;
}

export class KubernetesContractServer {
  readonly requests: RecordedRequest[] = [];
  private readonly store = new Map<string, Stored>();
  private server!: Server;
  private version = 1;
  url = '';

  private constructor(private readonly options: ContractServerOptions) {}

  static async start(options: ContractServerOptions): Promise<KubernetesContractServer> {
    const api = new KubernetesContractServer(options);
    const handler = (req: IncomingMessage, res: ServerResponse) => void api.handle(req, res);
    api.server = options.tls ? createTlsServer(options.tls, handler) : createServer(handler);
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    const { port } = api.server.address() as AddressInfo;
    api.url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return api;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The stored object, or undefined. */
  get(kind: string, namespace: string | undefined, name: string): Obj | undefined {
    const k = KINDS.find((x) => x.kind === kind)!;
    return this.store.get(this.key(k, namespace, name))?.object;
  }

  /** Objects of a kind, in a namespace or everywhere. */
  list(kind: string, namespace?: string): Obj[] {
    return [...this.store.values()]
      .map((s) => s.object)
      .filter((o) => o.kind === kind && (namespace === undefined || o.metadata.namespace === namespace));
  }

  /**
   * What the Job controller does once a Job starts: one Pod from its template, owned by the Job (admission
   * runs on it, as on any Pod), and `status.active`.
   */
  startJob(namespace: string, name: string): Obj {
    const job = this.get('Job', namespace, name);
    if (!job) throw new Error(`no Job ${namespace}/${name}`);
    const pod = this.create(KINDS.find((k) => k.kind === 'Pod')!, namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-${randomUUID().slice(0, 5)}`,
        namespace,
        labels: { ...job.spec.template.metadata?.labels, 'job-name': name },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true },
        ],
      },
      spec: job.spec.template.spec,
    });
    job.status = { active: 1, startTime: new Date().toISOString() };
    return pod;
  }

  private key(k: Kind, namespace: string | undefined, name: string): string {
    return `${groupVersion(k)}|${k.resource}|${k.namespaced ? namespace : ''}|${name}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(url.searchParams);
    const contentType = req.headers['content-type']?.split(';')[0];
    this.requests.push({ method: req.method ?? '', path: url.pathname, query, contentType });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    try {
      if (req.headers.authorization !== `Bearer ${this.options.token}`) {
        throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      }
      const [status, payload] = this.route(req.method ?? 'GET', url.pathname, query, contentType, body);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    } catch (error) {
      const e =
        error instanceof ApiError ? error : new ApiError(500, 'InternalError', (error as Error).message);
      res.writeHead(e.code, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: e.message,
          reason: e.reason,
          details: e.details,
          code: e.code,
        }),
      );
    }
  }

  private route(
    method: string,
    path: string,
    query: Record<string, string>,
    contentType: string | undefined,
    body: string,
  ): [number, Obj] {
    const discovery = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (discovery && method === 'GET') {
      const [group, version] = discovery[1] ? ['', 'v1'] : [discovery[2]!, discovery[3]!];
      const kinds = KINDS.filter((k) => k.group === group && k.version === version);
      if (kinds.length === 0)
        throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      return [
        200,
        {
          kind: 'APIResourceList',
          apiVersion: 'v1',
          groupVersion: group ? `${group}/${version}` : version,
          resources: kinds.map((k) => ({
            name: k.resource,
            singularName: k.kind.toLowerCase(),
            namespaced: k.namespaced,
            kind: k.kind,
            verbs: ['create', 'delete', 'get', 'list', 'patch'],
          })),
        },
      ];
    }
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/.exec(
      path,
    );
    const [group, version] = m?.[1] ? [m[1], m[2]!] : ['', 'v1'];
    const kind = m && KINDS.find((k) => k.group === group && k.version === version && k.resource === m[4]);
    if (!m || !kind) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const namespace = m[3] ? decodeURIComponent(m[3]) : undefined;
    const name = m[5] ? decodeURIComponent(m[5]) : undefined;
    if (
      kind.namespaced &&
      namespace &&
      !this.store.has(this.key(KINDS[0]!, undefined, namespace)) &&
      method !== 'GET'
    ) {
      throw notFound(KINDS[0]!, namespace);
    }
    if (name === undefined) {
      if (method === 'GET') return [200, this.listPage(kind, namespace, query)];
      if (method === 'POST') return [201, this.create(kind, namespace, parseBody(body))];
      throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on a collection`);
    }
    const key = this.key(kind, namespace, name);
    if (method === 'GET') {
      const found = this.store.get(key);
      if (!found) throw notFound(kind, name);
      return [200, found.object];
    }
    if (method === 'PATCH') return this.patch(kind, namespace, name, query, contentType, body);
    if (method === 'DELETE') return [200, this.delete(kind, namespace, name, query, body)];
    throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported`);
  }

  private listPage(kind: Kind, namespace: string | undefined, query: Record<string, string>): Obj {
    const selector = parseLabelSelector(query.labelSelector ?? '');
    const all = [...this.store.values()]
      .map((s) => s.object)
      .filter((o) => o.kind === kind.kind && (namespace === undefined || o.metadata.namespace === namespace))
      .filter((o) => selector(o.metadata.labels ?? {}))
      .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
    const start = query.continue ? Number(Buffer.from(query.continue, 'base64url').toString()) : 0;
    const limit = query.limit ? Number(query.limit) : all.length;
    const items = all.slice(start, start + limit);
    const next =
      start + limit < all.length ? Buffer.from(String(start + limit)).toString('base64url') : undefined;
    return {
      kind: `${kind.kind}List`,
      apiVersion: groupVersion(kind),
      metadata: { resourceVersion: String(this.version), ...(next ? { continue: next } : {}) },
      items,
    };
  }

  /** Runs the admission policies bound to the request's namespace; a denial is 422 Invalid. */
  private admit(kind: Kind, operation: 'CREATE' | 'UPDATE', object: Obj, oldObject: Obj | null): void {
    const policies = (this.options.admission ?? []).filter((o) => o.kind === 'ValidatingAdmissionPolicy');
    const bindings = (this.options.admission ?? []).filter(
      (o) => o.kind === 'ValidatingAdmissionPolicyBinding',
    );
    const namespaceObject = kind.namespaced
      ? (this.store.get(this.key(KINDS[0]!, undefined, object.metadata.namespace))?.object ?? null)
      : null;
    for (const binding of bindings) {
      const policy = policies.find((p) => p.metadata.name === binding.spec.policyName);
      if (!policy || !policyMatches(policy, kind, operation)) continue;
      const labels = (kind.namespaced ? namespaceObject?.metadata.labels : object.metadata.labels) ?? {};
      if (!selectorMatches(binding.spec.matchResources?.namespaceSelector, labels)) continue;
      const verdict = evaluatePolicy(policy, {
        operation,
        object,
        oldObject,
        namespaceObject,
        resource: { group: kind.group, version: kind.version, resource: kind.resource },
      });
      if (!verdict.allowed && binding.spec.validationActions.includes('Deny')) {
        throw new ApiError(
          422,
          'Invalid',
          `${kind.resource} "${object.metadata.name}" is forbidden: ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${binding.metadata.name}' denied request: ${verdict.messages.join('; ')}`,
        );
      }
    }
  }

  /** ResourceQuota admission for the two counts the tenant chart sets: pods and count/jobs.batch. */
  private checkQuota(kind: Kind, object: Obj): void {
    const counted = kind.kind === 'Pod' ? 'pods' : kind.kind === 'Job' ? 'count/jobs.batch' : undefined;
    if (!counted) return;
    const namespace = object.metadata.namespace;
    for (const quota of this.list('ResourceQuota', namespace)) {
      const hard = quota.spec?.hard?.[counted];
      if (hard === undefined) continue;
      const used = this.list(kind.kind, namespace).length;
      if (used + 1 > Number(hard)) {
        throw new ApiError(
          403,
          'Forbidden',
          `${kind.resource}${kind.group ? `.${kind.group}` : ''} "${object.metadata.name}" is forbidden: exceeded quota: ${quota.metadata.name}, requested: ${counted}=1, used: ${counted}=${used}, limited: ${counted}=${hard}`,
        );
      }
    }
  }

  private create(kind: Kind, namespace: string | undefined, object: Obj, manager = 'unknown'): Obj {
    const name = object.metadata?.name;
    if (!name) throw new ApiError(422, 'Invalid', `${kind.kind} is invalid: metadata.name: Required value`);
    const key = this.key(kind, namespace, name);
    if (this.store.has(key)) {
      throw new ApiError(409, 'AlreadyExists', `${kind.resource} "${name}" already exists`, {
        name,
        kind: kind.resource,
      });
    }
    const stored = structuredClone(object);
    stored.apiVersion = groupVersion(kind);
    stored.kind = kind.kind;
    if (kind.namespaced) stored.metadata.namespace = namespace;
    delete stored.status;
    this.admit(kind, 'CREATE', stored, null);
    this.checkQuota(kind, stored);
    stored.metadata.uid = randomUUID();
    stored.metadata.resourceVersion = String(++this.version);
    stored.metadata.creationTimestamp = new Date().toISOString();
    const owners = new Map<string, string>();
    for (const path of leaves(object).keys()) owners.set(path, manager);
    this.store.set(key, { object: stored, owners });
    return stored;
  }

  private patch(
    kind: Kind,
    namespace: string | undefined,
    name: string,
    query: Record<string, string>,
    contentType: string | undefined,
    body: string,
  ): [number, Obj] {
    const key = this.key(kind, namespace, name);
    const found = this.store.get(key);
    if (contentType === 'application/apply-patch+yaml') {
      const manager = query.fieldManager;
      if (!manager) {
        throw new ApiError(
          422,
          'Invalid',
          'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        );
      }
      const applied = parseYaml(body) as Obj;
      if (applied?.metadata?.name !== name) {
        throw new ApiError(
          400,
          'BadRequest',
          `the name of the object (${applied?.metadata?.name}) does not match the name on the URL (${name})`,
        );
      }
      if (!found) return [201, this.create(kind, namespace, applied, manager)];
      return [200, this.apply(kind, found, applied, manager, query.force === 'true')];
    }
    if (!found) throw notFound(kind, name);
    const patch = parseBody(body);
    let next: Obj;
    if (contentType === 'application/json-patch+json') next = jsonPatch(found.object, patch);
    else if (contentType === 'application/merge-patch+json') next = mergePatch(found.object, patch) as Obj;
    else
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
      );
    this.admit(kind, 'UPDATE', next, found.object);
    // An update moves ownership of every changed field to its manager.
    const before = leaves(found.object);
    for (const [path, value] of leaves(next)) {
      if (JSON.stringify(before.get(path)) !== JSON.stringify(value))
        found.owners.set(path, query.fieldManager ?? 'unknown');
    }
    next.metadata.resourceVersion = String(++this.version);
    found.object = next;
    return [200, next];
  }

  /** Server-side apply on an existing object: conflicts unless forced, prunes fields the manager dropped. */
  private apply(kind: Kind, found: Stored, applied: Obj, manager: string, force: boolean): Obj {
    const next = structuredClone(found.object);
    const wanted = leaves(applied);
    const conflicts: string[] = [];
    for (const [path, value] of wanted) {
      const owner = found.owners.get(path);
      if (owner && owner !== manager && JSON.stringify(getPath(next, path)) !== JSON.stringify(value)) {
        conflicts.push(`conflict with "${owner}": ${path.replaceAll(SEP, '.')}`);
      }
    }
    if (conflicts.length > 0 && !force) {
      throw new ApiError(
        409,
        'Conflict',
        `Apply failed with ${conflicts.length} conflict(s): ${conflicts.join(', ')}`,
        {
          causes: conflicts.map((c) => ({
            reason: 'FieldManagerConflict',
            message: c,
            field: c.split(': ')[1],
          })),
        },
      );
    }
    for (const [path, owner] of found.owners) {
      if (owner === manager && !wanted.has(path)) {
        deletePath(next, path);
        found.owners.delete(path);
      }
    }
    for (const [path, value] of wanted) {
      setPath(next, path, value);
      found.owners.set(path, manager);
    }
    this.admit(kind, 'UPDATE', next, found.object);
    next.metadata.resourceVersion = String(++this.version);
    found.object = next;
    return next;
  }

  private delete(
    kind: Kind,
    namespace: string | undefined,
    name: string,
    query: Record<string, string>,
    body: string,
  ): Obj {
    const key = this.key(kind, namespace, name);
    const found = this.store.get(key);
    if (!found) throw notFound(kind, name);
    const options = body ? parseBody(body) : {};
    // batch/v1 Jobs orphan their Pods unless told otherwise; other kinds default to Background.
    const policy =
      query.propagationPolicy ?? options.propagationPolicy ?? (kind.kind === 'Job' ? 'Orphan' : 'Background');
    if (!['Orphan', 'Background', 'Foreground'].includes(policy)) {
      throw new ApiError(
        422,
        'Invalid',
        `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${policy}"`,
      );
    }
    this.store.delete(key);
    if (kind.kind === 'Namespace') {
      for (const [k, s] of this.store) if (s.object.metadata.namespace === name) this.store.delete(k);
    }
    if (policy !== 'Orphan') {
      for (const [k, s] of this.store) {
        if ((s.object.metadata.ownerReferences ?? []).some((r: Obj) => r.uid === found.object.metadata.uid))
          this.store.delete(k);
      }
    }
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, group: kind.group, kind: kind.resource, uid: found.object.metadata.uid },
    };
  }
}

function parseBody(body: string): Obj {
  try {
    return JSON.parse(body) as Obj;
  } catch {
    throw new ApiError(400, 'BadRequest', 'the request body is not valid JSON');
  }
}

import { type BetterStackClient, BetterStackError, type RemoteResource } from './betterstack-client.ts';
import {
  type AttributeValue,
  type DeclaredResource,
  IDENTITY_ATTRIBUTE,
  type ResourceKind,
  TOP_LEVEL_KINDS,
  type TopLevelKind,
} from './declared.ts';

export interface FieldChange {
  readonly from: AttributeValue | null;
  readonly to: AttributeValue;
}

/** Where a status page resource sits and what it shows; an id is null while that object is still to be created. */
export interface PageLink {
  readonly page: { readonly identity: string; readonly id: string | null };
  readonly target: {
    readonly kind: 'monitor' | 'heartbeat';
    readonly identity: string;
    readonly id: string | null;
  };
}

export type PlannedChange =
  | {
      readonly action: 'create';
      readonly kind: ResourceKind;
      readonly identity: string;
      readonly attributes: Readonly<Record<string, AttributeValue>>;
      readonly link?: PageLink;
    }
  | {
      readonly action: 'update';
      readonly kind: ResourceKind;
      readonly identity: string;
      readonly id: string;
      readonly fields: Readonly<Record<string, FieldChange>>;
      readonly link?: PageLink;
    }
  | {
      readonly action: 'delete';
      readonly kind: ResourceKind;
      readonly identity: string;
      readonly id: string;
      /** Owned but no longer declared, or a second object with a declared identity. */
      readonly reason: 'not declared' | 'duplicate';
      /** Status page resources: the page they are on. */
      readonly pageId?: string;
    };

export interface MonitorsPlan {
  readonly env: string;
  readonly ownerPrefix: string;
  readonly changes: readonly PlannedChange[];
  /** Declared objects that already match. */
  readonly unchanged: number;
}

/** A managed attribute as BetterStack reports it: `paused` is read from `paused_at`. */
function remoteValue(remote: RemoteResource, attribute: string): AttributeValue | null {
  if (attribute === 'paused')
    return remote.attributes.paused_at !== null && remote.attributes.paused_at !== undefined;
  const value = remote.attributes[attribute];
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null;
}

function identityOf(remote: RemoteResource, kind: ResourceKind): string | null {
  const value = remote.attributes[IDENTITY_ATTRIBUTE[kind]];
  return typeof value === 'string' ? value : null;
}

/** What BetterStack holds: the top-level lists, and the resources of each owned status page by page id. */
export interface RemoteState {
  readonly top: Readonly<Record<TopLevelKind, readonly RemoteResource[]>>;
  readonly pageResources: ReadonlyMap<string, readonly RemoteResource[]>;
}

const byNumericId = (a: RemoteResource, b: RemoteResource) =>
  a.id.localeCompare(b.id, 'en', { numeric: true });

function fieldChanges(want: DeclaredResource, existing: RemoteResource): Record<string, FieldChange> {
  const fields: Record<string, FieldChange> = {};
  for (const [attribute, to] of Object.entries(want.attributes)) {
    const from = remoteValue(existing, attribute);
    if (from !== to) fields[attribute] = { from, to };
  }
  return fields;
}

/**
 * The difference between what is declared and what BetterStack holds, among owned objects only. Objects are
 * matched by identity; only declared attributes are compared, so settings changed by hand elsewhere stay.
 */
export function planChanges(
  declared: readonly DeclaredResource[],
  remote: RemoteState,
  owned: (identity: string) => boolean,
): { changes: PlannedChange[]; unchanged: number } {
  const changes: PlannedChange[] = [];
  /** `kind identity` -> id of the object that is kept. */
  const kept = new Map<string, string>();
  let unchanged = 0;
  for (const kind of TOP_LEVEL_KINDS) {
    const byIdentity = new Map<string, RemoteResource[]>();
    for (const item of [...remote.top[kind]].sort(byNumericId)) {
      const identity = identityOf(item, kind);
      if (identity === null || !owned(identity)) continue;
      byIdentity.set(identity, [...(byIdentity.get(identity) ?? []), item]);
    }
    const wanted = declared.filter((d) => d.kind === kind);
    for (const want of wanted) {
      const [existing, ...extra] = byIdentity.get(want.identity) ?? [];
      for (const item of extra) {
        changes.push({ action: 'delete', kind, identity: want.identity, id: item.id, reason: 'duplicate' });
      }
      if (existing === undefined) {
        changes.push({ action: 'create', kind, identity: want.identity, attributes: want.attributes });
        continue;
      }
      kept.set(`${kind} ${want.identity}`, existing.id);
      const fields = fieldChanges(want, existing);
      if (Object.keys(fields).length === 0) unchanged += 1;
      else changes.push({ action: 'update', kind, identity: want.identity, id: existing.id, fields });
    }
    const declaredIdentities = new Set(wanted.map((w) => w.identity));
    for (const [identity, items] of byIdentity) {
      if (declaredIdentities.has(identity)) continue;
      for (const item of items)
        changes.push({ action: 'delete', kind, identity, id: item.id, reason: 'not declared' });
    }
  }

  // Resources of a page to be deleted go with it; those of a kept page are matched by public name.
  const wantedResources = declared.filter((d) => d.kind === 'status_page_resource');
  const keptPages = declared
    .filter((d) => d.kind === 'status_page' && kept.has(`status_page ${d.identity}`))
    .map((d) => [d.identity, kept.get(`status_page ${d.identity}`)!] as const);
  for (const want of wantedResources) {
    const pageId = kept.get(`status_page ${want.page}`) ?? null;
    const target = want.target!;
    const targetId = kept.get(`${target.kind} ${target.identity}`) ?? null;
    const link: PageLink = {
      page: { identity: want.page!, id: pageId },
      target: { ...target, id: targetId },
    };
    const onPage = pageId === null ? [] : (remote.pageResources.get(pageId) ?? []);
    const [existing, ...extra] = [...onPage]
      .sort(byNumericId)
      .filter((r) => r.attributes.public_name === want.attributes.public_name);
    for (const item of extra) {
      changes.push({
        action: 'delete',
        kind: want.kind,
        identity: want.identity,
        id: item.id,
        reason: 'duplicate',
        pageId: pageId!,
      });
    }
    if (existing === undefined) {
      changes.push({
        action: 'create',
        kind: want.kind,
        identity: want.identity,
        attributes: want.attributes,
        link,
      });
      continue;
    }
    const fields = fieldChanges(want, existing);
    const shown = existing.attributes.resource_id;
    const shownId = shown === null || shown === undefined ? null : String(shown);
    if (shownId !== targetId) {
      fields.resource_id = {
        from: shownId,
        to: targetId ?? `<id of the new ${target.kind} '${target.identity}'>`,
      };
    }
    if (Object.keys(fields).length === 0) unchanged += 1;
    else
      changes.push({
        action: 'update',
        kind: want.kind,
        identity: want.identity,
        id: existing.id,
        fields,
        link,
      });
  }
  for (const [page, pageId] of keptPages) {
    const names = new Set(
      wantedResources.filter((w) => w.page === page).map((w) => w.attributes.public_name),
    );
    for (const item of remote.pageResources.get(pageId) ?? []) {
      if (names.has(item.attributes.public_name as AttributeValue)) continue;
      const identity = `${page} / ${String(item.attributes.public_name ?? item.id)}`;
      changes.push({
        action: 'delete',
        kind: 'status_page_resource',
        identity,
        id: item.id,
        reason: 'not declared',
        pageId,
      });
    }
  }
  return { changes, unchanged };
}

/** Reads every kind from BetterStack (all pages, and the resources of each owned status page) and plans. */
export async function planMonitors(
  client: BetterStackClient,
  input: {
    env: string;
    ownerPrefix: string;
    declared: readonly DeclaredResource[];
    owned: (identity: string) => boolean;
  },
): Promise<MonitorsPlan> {
  const top = {} as Record<TopLevelKind, RemoteResource[]>;
  for (const kind of TOP_LEVEL_KINDS) top[kind] = await client.list(kind);
  const pageResources = new Map<string, RemoteResource[]>();
  for (const page of top.status_page) {
    const identity = identityOf(page, 'status_page');
    if (identity !== null && input.owned(identity)) {
      pageResources.set(page.id, await client.list('status_page_resource', page.id));
    }
  }
  const { changes, unchanged } = planChanges(input.declared, { top, pageResources }, input.owned);
  return { env: input.env, ownerPrefix: input.ownerPrefix, changes, unchanged };
}

export type ApplyProgress = (change: PlannedChange, index: number, total: number) => void;

/**
 * Carries out exactly the plan's changes, in order, and stops at the first refusal. Every change is keyed by
 * identity, so a run that stopped half way converges when planned and applied again. A status page resource
 * whose page or monitor is created by the same run takes the id that creation returned.
 */
export async function applyPlan(
  client: BetterStackClient,
  plan: MonitorsPlan,
  progress: ApplyProgress = () => {},
): Promise<PlannedChange[]> {
  const created = new Map<string, string>();
  const resolve = (kind: string, identity: string, id: string | null): string => {
    const found = id ?? created.get(`${kind} ${identity}`);
    if (found === undefined)
      throw new BetterStackError(`${kind} '${identity}' has no id: it was neither found nor created`);
    return found;
  };
  const done: PlannedChange[] = [];
  for (const [index, change] of plan.changes.entries()) {
    progress(change, index, plan.changes.length);
    const pageId =
      change.action === 'delete'
        ? change.pageId
        : change.link && resolve('status_page', change.link.page.identity, change.link.page.id);
    const targetId =
      change.action !== 'delete' && change.link
        ? resolve(change.link.target.kind, change.link.target.identity, change.link.target.id)
        : undefined;
    if (change.action === 'create') {
      const body: Record<string, AttributeValue> =
        change.kind === 'status_page_resource'
          ? { ...change.attributes, resource_id: targetId! }
          : { [IDENTITY_ATTRIBUTE[change.kind]]: change.identity, ...change.attributes };
      const made = await client.create(change.kind, body, pageId);
      created.set(`${change.kind} ${change.identity}`, made.id);
    } else if (change.action === 'update') {
      const body = Object.fromEntries(Object.entries(change.fields).map(([name, field]) => [name, field.to]));
      // BetterStack takes resource_id and resource_type together (update-an-existing-status-page-resource).
      if (change.link !== undefined && 'resource_id' in body) {
        body.resource_id = targetId!;
        body.resource_type = change.link.target.kind === 'monitor' ? 'Monitor' : 'Heartbeat';
      }
      await client.update(change.kind, change.id, body, pageId);
    } else await client.remove(change.kind, change.id, pageId);
    done.push(change);
  }
  return done;
}

const SIGN = { create: '+', update: '~', delete: '-' } as const;

/** The plan as people read it: one line per change, then the changed fields. */
export function formatPlan(plan: MonitorsPlan): string {
  const lines = [`BetterStack plan for ${plan.env} (objects named ${plan.ownerPrefix}…):`];
  for (const change of plan.changes) {
    const id = change.action === 'create' ? '' : ` (id ${change.id})`;
    lines.push(`  ${SIGN[change.action]} ${change.kind.padEnd(11)} ${change.identity}${id}`);
    if (change.action !== 'delete' && change.link !== undefined) {
      lines.push(
        `      on ${change.link.page.identity}, showing ${change.link.target.kind} '${change.link.target.identity}'`,
      );
    }
    if (change.action === 'create') {
      for (const [name, value] of Object.entries(change.attributes))
        lines.push(`      ${name}: ${JSON.stringify(value)}`);
    } else if (change.action === 'update') {
      for (const [name, field] of Object.entries(change.fields)) {
        lines.push(`      ${name}: ${JSON.stringify(field.from)} -> ${JSON.stringify(field.to)}`);
      }
    } else lines.push(`      ${change.reason}`);
  }
  const count = (action: PlannedChange['action']) => plan.changes.filter((c) => c.action === action).length;
  lines.push(
    plan.changes.length === 0
      ? `No changes: ${plan.unchanged} objects match.`
      : `Plan: ${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete; ${plan.unchanged} unchanged.`,
  );
  return lines.join('\n');
}

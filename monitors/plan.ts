import type { BetterStackClient, RemoteResource } from './betterstack-client.ts';
import {
  type AttributeValue,
  type DeclaredResource,
  IDENTITY_ATTRIBUTE,
  RESOURCE_KINDS,
  type ResourceKind,
} from './declared.ts';

export interface FieldChange {
  readonly from: AttributeValue | null;
  readonly to: AttributeValue;
}

export type PlannedChange =
  | {
      readonly action: 'create';
      readonly kind: ResourceKind;
      readonly identity: string;
      readonly attributes: Readonly<Record<string, AttributeValue>>;
    }
  | {
      readonly action: 'update';
      readonly kind: ResourceKind;
      readonly identity: string;
      readonly id: string;
      readonly fields: Readonly<Record<string, FieldChange>>;
    }
  | {
      readonly action: 'delete';
      readonly kind: ResourceKind;
      readonly identity: string;
      readonly id: string;
      /** Owned but no longer declared, or a second object with a declared identity. */
      readonly reason: 'not declared' | 'duplicate';
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

/**
 * The difference between what is declared and what BetterStack holds, among owned objects only. Objects are
 * matched by identity; only declared attributes are compared, so settings changed by hand elsewhere stay.
 */
export function planChanges(
  declared: readonly DeclaredResource[],
  remote: Readonly<Record<ResourceKind, readonly RemoteResource[]>>,
  owned: (identity: string) => boolean,
): { changes: PlannedChange[]; unchanged: number } {
  const changes: PlannedChange[] = [];
  let unchanged = 0;
  for (const kind of RESOURCE_KINDS) {
    const byIdentity = new Map<string, RemoteResource[]>();
    for (const item of [...remote[kind]].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))) {
      const identity = identityOf(item, kind);
      if (identity === null || !owned(identity)) continue;
      byIdentity.set(identity, [...(byIdentity.get(identity) ?? []), item]);
    }
    const wanted = declared.filter((d) => d.kind === kind);
    for (const want of wanted) {
      const [existing, ...extra] = byIdentity.get(want.identity) ?? [];
      for (const item of extra)
        changes.push({ action: 'delete', kind, identity: want.identity, id: item.id, reason: 'duplicate' });
      if (existing === undefined) {
        changes.push({ action: 'create', kind, identity: want.identity, attributes: want.attributes });
        continue;
      }
      const fields: Record<string, FieldChange> = {};
      for (const [attribute, to] of Object.entries(want.attributes)) {
        const from = remoteValue(existing, attribute);
        if (from !== to) fields[attribute] = { from, to };
      }
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
  return { changes, unchanged };
}

/** Reads every kind from BetterStack (all pages) and plans. */
export async function planMonitors(
  client: BetterStackClient,
  input: {
    env: string;
    ownerPrefix: string;
    declared: readonly DeclaredResource[];
    owned: (identity: string) => boolean;
  },
): Promise<MonitorsPlan> {
  const remote = {} as Record<ResourceKind, RemoteResource[]>;
  for (const kind of RESOURCE_KINDS) remote[kind] = await client.list(kind);
  const { changes, unchanged } = planChanges(input.declared, remote, input.owned);
  return { env: input.env, ownerPrefix: input.ownerPrefix, changes, unchanged };
}

/** The body BetterStack takes for a change: the identity attribute plus the declared values. */
function createBody(change: Extract<PlannedChange, { action: 'create' }>): Record<string, AttributeValue> {
  return { [IDENTITY_ATTRIBUTE[change.kind]]: change.identity, ...change.attributes };
}

export type ApplyProgress = (change: PlannedChange, index: number, total: number) => void;

/**
 * Carries out exactly the plan's changes, in order, and stops at the first refusal. Every change is keyed by
 * identity, so a run that stopped half way converges when planned and applied again.
 */
export async function applyPlan(
  client: BetterStackClient,
  plan: MonitorsPlan,
  progress: ApplyProgress = () => {},
): Promise<PlannedChange[]> {
  const done: PlannedChange[] = [];
  for (const [index, change] of plan.changes.entries()) {
    progress(change, index, plan.changes.length);
    if (change.action === 'create') await client.create(change.kind, createBody(change));
    else if (change.action === 'update') {
      await client.update(
        change.kind,
        change.id,
        Object.fromEntries(Object.entries(change.fields).map(([name, field]) => [name, field.to])),
      );
    } else await client.remove(change.kind, change.id);
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

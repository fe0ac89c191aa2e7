import { validationError } from './errors.ts';
import { attributeDef, entityDef, type EntityDef } from './schema.ts';
import { keyOf, type Entity, type EntityStore, type StoredValue } from './store.ts';

// Entities as the API writes them (ftrack.md, "Operations"): `__entity_type__` on every one, its primary key, the
// projected attributes; an entity appears once in full in a reply and after that as a reference
// {__entity_type__, <primary key>}; datetimes as {"__type__": "datetime", "value": "…"}.

/** Attribute name → what to project on the related entity (empty for a scalar). */
export type Projection = Map<string, Projection>;

/** The projection tree of `select` paths on `def`, every step checked against the schema. */
export function buildProjection(def: EntityDef, paths: readonly (readonly string[])[] | null): Projection {
  const root: Projection = new Map();
  for (const path of paths ?? def.defaultProjections.map((name) => [name])) {
    let node = root;
    let at = def;
    path.forEach((name, index) => {
      const attribute = attributeDef(at, name);
      const last = index === path.length - 1;
      if (!last) {
        if (attribute.kind !== 'ref' && attribute.kind !== 'collection') {
          throw validationError(`"${name}" on ${at.name} is not a relation: cannot project "${path.join('.')}".`);
        }
        at = entityDef(attribute.target);
      }
      let child = node.get(name);
      if (!child) {
        child = new Map();
        node.set(name, child);
      }
      node = child;
    });
  }
  return root;
}

export interface RenderContext {
  store: EntityStore;
  /** Computed attributes: `link`, ComponentLocation `url`. */
  computed(entity: Entity, name: string): StoredValue;
}

/** Renders `entities` (each with `projection`) for one operation's reply. */
export function renderEntities(context: RenderContext, entities: readonly Entity[], projection: Projection): unknown[] {
  const merged = new Map<string, Projection>();
  for (const entity of entities) collectProjections(context, entity, projection, merged, 0);
  const emitted = new Set<string>();
  return entities.map((entity) => renderEntity(context, entity, merged, emitted));
}

/** Pass one: the union of every projection each entity is reached with, so its one full rendering has them all. */
function collectProjections(context: RenderContext, entity: Entity, projection: Projection, merged: Map<string, Projection>, depth: number): void {
  if (depth > 16) return;
  const key = keyOf(entity);
  const into = merged.get(key) ?? new Map<string, Projection>();
  merged.set(key, into);
  mergeInto(into, projection);
  const def = entityDef(entity.type);
  for (const [name, sub] of projection) {
    if (sub.size === 0) continue;
    const attribute = def.attributes[name];
    if (attribute?.kind === 'ref') {
      const related = context.store.refOf(entity, attribute);
      if (related) collectProjections(context, related, sub, merged, depth + 1);
    } else if (attribute?.kind === 'collection') {
      for (const member of context.store.collectionOf(entity, attribute)) collectProjections(context, member, sub, merged, depth + 1);
    }
  }
}

function mergeInto(into: Projection, from: Projection): void {
  for (const [name, sub] of from) {
    let target = into.get(name);
    if (!target) {
      target = new Map();
      into.set(name, target);
    }
    mergeInto(target, sub);
  }
}

function renderEntity(context: RenderContext, entity: Entity, merged: Map<string, Projection>, emitted: Set<string>): unknown {
  const key = keyOf(entity);
  if (emitted.has(key)) return reference(entity);
  emitted.add(key);
  const def = entityDef(entity.type);
  const out: Record<string, unknown> = reference(entity);
  for (const name of merged.get(key)?.keys() ?? []) {
    const attribute = def.attributes[name];
    if (!attribute) continue;
    if (attribute.kind === 'ref') {
      const related = context.store.refOf(entity, attribute);
      out[name] = related ? renderEntity(context, related, merged, emitted) : null;
    } else if (attribute.kind === 'collection') {
      out[name] = context.store.collectionOf(entity, attribute).map((member) => renderEntity(context, member, merged, emitted));
    } else if (attribute.computed) {
      out[name] = context.computed(entity, name);
    } else {
      out[name] = renderScalar(attribute.kind, entity.attrs[name] ?? null);
    }
  }
  return out;
}

export function reference(entity: Entity): Record<string, unknown> {
  const out: Record<string, unknown> = { __entity_type__: entity.type };
  for (const name of entityDef(entity.type).primaryKey) out[name] = entity.attrs[name] ?? null;
  return out;
}

export function renderScalar(kind: string, value: StoredValue): unknown {
  if (kind === 'datetime' && typeof value === 'string') return { __type__: 'datetime', value };
  return value;
}

/** Every stored (not computed, not relational) attribute: what create and update answer. */
export function renderStored(entity: Entity): Record<string, unknown> {
  const def = entityDef(entity.type);
  const out: Record<string, unknown> = reference(entity);
  for (const [name, attribute] of Object.entries(def.attributes)) {
    if (attribute.kind === 'ref' || attribute.kind === 'collection' || attribute.computed) continue;
    out[name] = renderScalar(attribute.kind, entity.attrs[name] ?? null);
  }
  return out;
}

import { entityDef, findEntityDef, type AttributeDef, type ConcreteTypeName, type EntityTypeName } from './schema.ts';

// The sandbox's records: in memory, seeded the same on every start. Values are JSON scalars; datetimes are stored
// as UTC "YYYY-MM-DDTHH:mm:ss" strings and rendered as {"__type__": "datetime"} on the wire (serialize.ts).

export type StoredScalar = string | number | boolean | null;
export type StoredValue = StoredScalar | StoredValue[] | { [key: string]: StoredValue };

export interface Entity {
  readonly type: ConcreteTypeName;
  readonly attrs: Record<string, StoredValue>;
}

export class EntityStore {
  /** Every entity by its primary key string (`Type\u0000key1\u0000key2`). */
  readonly #byKey = new Map<string, Entity>();
  /** Ids are UUIDs, unique across types, as on a real server: a reference to an abstract type resolves through here. */
  readonly #byId = new Map<string, Entity>();
  /** Each concrete type's entities, in insertion order (queries and collections scan one type, not the store). */
  readonly #byType = new Map<ConcreteTypeName, Set<Entity>>();
  /**
   * Entities by the value of one attribute (`Type\u0000attr` → value → entities), built the first time a type's
   * attribute is looked up and kept up to date by insert, update and remove: a server's indexes, so that listing
   * thousands of components does not scan every ComponentLocation for each of them.
   */
  readonly #byAttr = new Map<string, Map<StoredValue, Set<Entity>>>();

  insert(entity: Entity): Entity {
    const key = keyOf(entity);
    if (this.#byKey.has(key)) throw new Error(`duplicate ${key}`);
    const id = entity.attrs.id;
    if (typeof id === 'string') {
      if (this.#byId.has(id)) throw new Error(`duplicate id ${id}`);
      this.#byId.set(id, entity);
    }
    this.#byKey.set(key, entity);
    let ofType = this.#byType.get(entity.type);
    if (!ofType) {
      ofType = new Set();
      this.#byType.set(entity.type, ofType);
    }
    ofType.add(entity);
    this.#index(entity, true);
    return entity;
  }

  /** Changes attributes (never the primary key: updates refuse that), keeping the indexes true. */
  update(entity: Entity, changes: Readonly<Record<string, StoredValue>>): void {
    const changed = Object.keys(changes).filter((name) => changes[name] !== entity.attrs[name]);
    this.#index(entity, false, changed);
    Object.assign(entity.attrs, changes);
    this.#index(entity, true, changed);
  }

  /** The entities of `type` (its concrete subtypes for an abstract one) whose `attribute` is `value`. */
  withAttr(type: EntityTypeName, attribute: string, value: StoredValue): Entity[] {
    return entityDef(type).concrete.flatMap((concrete) => {
      let index = this.#byAttr.get(`${concrete}\u0000${attribute}`);
      if (!index) {
        index = new Map();
        this.#byAttr.set(`${concrete}\u0000${attribute}`, index);
        for (const entity of this.#byType.get(concrete) ?? []) add(index, entity.attrs[attribute] ?? null, entity);
      }
      // Insertion order (an entity whose attribute changed comes last, as after a server's re-index).
      return [...(index.get(value) ?? [])];
    });
  }

  /** Adds `entity` to (or takes it out of) the indexes of its type, or only those of the `only` attributes. */
  #index(entity: Entity, present: boolean, only?: readonly string[]): void {
    for (const [key, index] of this.#byAttr) {
      if (!key.startsWith(`${entity.type}\u0000`)) continue;
      const attribute = key.slice(entity.type.length + 1);
      if (only && !only.includes(attribute)) continue;
      const value = entity.attrs[attribute] ?? null;
      if (present) add(index, value, entity);
      else index.get(value)?.delete(entity);
    }
  }

  remove(entity: Entity): void {
    this.#index(entity, false);
    this.#byKey.delete(keyOf(entity));
    this.#byType.get(entity.type)?.delete(entity);
    const id = entity.attrs.id;
    if (typeof id === 'string' && this.#byId.get(id) === entity) this.#byId.delete(id);
  }

  byId(id: string): Entity | undefined {
    return this.#byId.get(id);
  }

  /** The entity of `type` (or one of its concrete subtypes) with these primary key values. */
  find(type: EntityTypeName, keyValues: readonly string[]): Entity | undefined {
    const def = entityDef(type);
    if (def.primaryKey.length === 1 && def.primaryKey[0] === 'id') {
      const found = keyValues.length === 1 && keyValues[0] !== undefined ? this.#byId.get(keyValues[0]) : undefined;
      return found && def.concrete.includes(found.type) ? found : undefined;
    }
    for (const concrete of def.concrete) {
      const found = this.#byKey.get([concrete, ...keyValues].join('\u0000'));
      if (found) return found;
    }
    return undefined;
  }

  /** Every entity of `type` (its concrete subtypes for an abstract one, type by type), in insertion order. */
  all(type: EntityTypeName): Entity[] {
    return entityDef(type).concrete.flatMap((concrete) => [...(this.#byType.get(concrete) ?? [])]);
  }

  /** The entity a `ref` attribute points at, or null. */
  refOf(entity: Entity, attribute: Extract<AttributeDef, { kind: 'ref' }>): Entity | null {
    const value = entity.attrs[attribute.key];
    if (typeof value !== 'string') return null;
    return this.find(attribute.target, [value]) ?? null;
  }

  /** The members of a `collection` attribute. */
  collectionOf(entity: Entity, attribute: Extract<AttributeDef, { kind: 'collection' }>): Entity[] {
    const id = entity.attrs.id;
    if (typeof id !== 'string') return [];
    return this.withAttr(attribute.target, attribute.backKey, id);
  }

  /** The project an entity belongs to (null for global records: users, statuses, locations, types…). */
  projectIdOf(entity: Entity, depth = 0): string | null {
    if (depth > 16) return null;
    const parent = (id: StoredValue | undefined): string | null => {
      const found = typeof id === 'string' ? this.byId(id) : undefined;
      return found ? this.projectIdOf(found, depth + 1) : null;
    };
    switch (entity.type) {
      case 'Project':
        return entity.attrs.id as string;
      case 'Sequence':
      case 'Shot':
      case 'Task':
        return typeof entity.attrs.project_id === 'string' ? entity.attrs.project_id : null;
      case 'Asset':
        return parent(entity.attrs.context_id);
      case 'AssetVersion':
        return parent(entity.attrs.asset_id);
      case 'FileComponent': {
        if (typeof entity.attrs.version_id === 'string') return parent(entity.attrs.version_id);
        // A note's attachment belongs where its note does.
        const [attached] = this.withAttr('NoteComponent', 'component_id', entity.attrs.id ?? null);
        return attached ? parent(attached.attrs.note_id) : null;
      }
      case 'NoteComponent':
        return parent(entity.attrs.note_id);
      case 'AssetVersionList':
        return typeof entity.attrs.project_id === 'string' ? entity.attrs.project_id : null;
      case 'ListObject':
        return parent(entity.attrs.list_id);
      case 'ComponentLocation':
        return parent(entity.attrs.component_id);
      case 'Metadata':
      case 'Note':
        return parent(entity.attrs.parent_id);
      default:
        return null;
    }
  }
}

function add(index: Map<StoredValue, Set<Entity>>, value: StoredValue, entity: Entity): void {
  let entities = index.get(value);
  if (!entities) index.set(value, (entities = new Set()));
  entities.add(entity);
}

export function keyOf(entity: Entity): string {
  const def = findEntityDef(entity.type);
  if (!def) throw new Error(`unknown type ${entity.type}`);
  return [entity.type, ...def.primaryKey.map((name) => String(entity.attrs[name] ?? ''))].join('\u0000');
}

/** "2024-05-01T10:00:00": UTC without an offset, as a server with time zone support sends (see README). */
export function formatDatetime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

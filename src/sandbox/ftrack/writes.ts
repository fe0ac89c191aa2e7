import { randomUUID } from 'node:crypto';
import type { Actor } from './access.ts';
import { validationError } from './errors.ts';
import { normalizeDatetime } from './query.ts';
import { attributeDef, entityDef, isSubtypeOf, SERVER_LOCATION_ID, type EntityDef, type ScalarKind } from './schema.ts';
import { formatDatetime, type Entity, type EntityStore, type StoredValue } from './store.ts';

// create, update and delete, checked as a server checks them: unknown types and attributes, computed and immutable
// attributes, missing required ones, values of the wrong kind and references to nothing are ValidationErrors;
// what the user may not do is a PermissionError (access.ts).

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const maxStringLength = 1_000_000;

export interface WriteContext {
  store: EntityStore;
  actor: Actor;
  /** The status a new Sequence, Shot or Task gets when none is given (AssetVersion has no default). */
  defaultContextStatusId: string;
  /** Called when a FileComponent goes: its data in the server location goes with it. */
  removeData(resourceIdentifier: string): Promise<void>;
}

export function createEntity(context: WriteContext, entityType: unknown, entityData: unknown): Entity {
  const def = concreteDef(entityType);
  const data = dataObject(entityData);
  const attrs: Record<string, StoredValue> = {};
  for (const [name, value] of Object.entries(data)) {
    if (name === '__entity_type__') {
      if (value !== def.name) throw validationError(`__entity_type__ "${String(value)}" does not match entity_type "${def.name}".`);
      continue;
    }
    assign(context, def, attrs, name, value);
  }
  applyDefaults(context, def, attrs);
  for (const name of def.required) {
    if (attrs[name] === undefined || attrs[name] === null) {
      throw validationError(`Missing required attribute "${name}" when creating ${def.name}.`);
    }
  }
  if (def.primaryKey.includes('id') && !uuidPattern.test(String(attrs.id))) {
    throw validationError(`"${String(attrs.id)}" is not a valid id: ids are UUIDs.`);
  }
  const entity: Entity = { type: def.name as Entity['type'], attrs };
  checkReferences(context, entity);
  if (context.store.find(def.name, def.primaryKey.map((name) => String(attrs[name])))) {
    throw validationError(`${def.name} with key ${keyText(def, attrs)} already exists.`);
  }
  if (entity.attrs.id !== undefined && context.store.byId(String(entity.attrs.id))) {
    throw validationError(`An entity with id "${String(entity.attrs.id)}" already exists.`);
  }
  checkUniqueInLocation(context, entity);
  context.actor.checkWrite('create', entity);
  return context.store.insert(entity);
}

export function updateEntity(context: WriteContext, entityType: unknown, entityKey: unknown, entityData: unknown): Entity {
  const def = concreteDef(entityType);
  const entity = findVisible(context, def, entityKey);
  const data = dataObject(entityData);
  const changes: Record<string, StoredValue> = {};
  for (const [name, value] of Object.entries(data)) {
    if (name === '__entity_type__') continue;
    assign(context, def, changes, name, value);
  }
  for (const [name, value] of Object.entries(changes)) {
    const attribute = def.attributes[name];
    const fixed = def.primaryKey.includes(name) || (attribute && attribute.kind !== 'ref' && attribute.kind !== 'collection' && attribute.immutable);
    if (fixed && value !== entity.attrs[name]) throw validationError(`"${name}" of ${def.name} cannot be changed.`);
    if (def.required.includes(name) && value === null) throw validationError(`"${name}" of ${def.name} is required.`);
  }
  const updated: Entity = { type: entity.type, attrs: { ...entity.attrs, ...changes } };
  checkReferences(context, updated);
  context.actor.checkWrite('update', entity);
  context.store.update(entity, changes);
  return entity;
}

export async function deleteEntity(context: WriteContext, entityType: unknown, entityKey: unknown): Promise<void> {
  const def = concreteDef(entityType);
  const entity = findVisible(context, def, entityKey);
  context.actor.checkWrite('delete', entity);
  await removeWithOwned(context, entity, 0);
}

/** The visible entity of `def` with this key (a list in primary key order, or a bare string), else ValidationError. */
export function findVisible(context: { store: EntityStore; actor: Actor }, def: EntityDef, entityKey: unknown): Entity {
  const keys = typeof entityKey === 'string' ? [entityKey] : entityKey;
  if (!Array.isArray(keys) || keys.length !== def.primaryKey.length || !keys.every((key) => typeof key === 'string' && key.length <= 1024)) {
    throw validationError(`entity_key of ${def.name} must be its primary key (${def.primaryKey.join(', ')}).`);
  }
  const entity = context.store.find(def.name, keys as string[]);
  if (!entity || !context.actor.canRead(entity)) throw validationError(`No ${def.name} with key ${JSON.stringify(keys)} was found.`);
  return entity;
}

function concreteDef(entityType: unknown): EntityDef {
  if (typeof entityType !== 'string') throw validationError('entity_type must be a string.');
  const def = entityDef(entityType);
  if (def.abstract) throw validationError(`Cannot create or change the abstract type "${def.name}": name a concrete one.`);
  return def;
}

function dataObject(data: unknown): Record<string, unknown> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw validationError('entity_data must be an object.');
  return data as Record<string, unknown>;
}

/** Sets one attribute from the wire into `into`: a reference sets its key, a scalar is checked against its kind. */
function assign(context: WriteContext, def: EntityDef, into: Record<string, StoredValue>, name: string, value: unknown): void {
  const attribute = attributeDef(def, name);
  if (attribute.kind === 'collection') {
    throw validationError(`"${name}" of ${def.name} is a collection: set the other side (its "${attribute.backKey}").`);
  }
  if (attribute.kind === 'ref') {
    if (value === null) {
      into[attribute.key] = null;
      return;
    }
    const target = value as Record<string, unknown> | undefined;
    const type = target?.__entity_type__;
    const id = target?.id;
    if (typeof target !== 'object' || typeof id !== 'string') {
      throw validationError(`"${name}" of ${def.name} must be an entity reference {__entity_type__, id}.`);
    }
    const related = context.store.byId(id);
    if (!related || !isSubtypeOf(related.type, attribute.target) || (type !== undefined && type !== related.type) || !context.actor.canRead(related)) {
      throw validationError(`"${name}" of ${def.name} refers to ${String(type ?? attribute.target)} "${id}", which does not exist.`);
    }
    into[attribute.key] = id;
    return;
  }
  if (attribute.computed) throw validationError(`"${name}" of ${def.name} is computed and cannot be set.`);
  into[name] = scalarValue(attribute.kind, value, `${def.name}.${name}`);
}

function scalarValue(kind: ScalarKind, value: unknown, where: string): StoredValue {
  if (value === null) return null;
  switch (kind) {
    case 'string':
      if (typeof value !== 'string' || value.length > maxStringLength) throw validationError(`${where} must be a string.`);
      return value;
    case 'integer':
      if (!Number.isSafeInteger(value)) throw validationError(`${where} must be an integer.`);
      return value as number;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw validationError(`${where} must be a number.`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw validationError(`${where} must be true or false.`);
      return value;
    case 'datetime': {
      const text = typeof value === 'string' ? value : (value as { __type__?: unknown; value?: unknown })?.__type__ === 'datetime' ? (value as { value: unknown }).value : undefined;
      if (typeof text !== 'string') throw validationError(`${where} must be a datetime {"__type__": "datetime", "value": "…"}.`);
      return normalizeDatetime(text);
    }
    case 'json':
      throw validationError(`${where} cannot be set.`);
  }
}

function applyDefaults(context: WriteContext, def: EntityDef, attrs: Record<string, StoredValue>): void {
  const now = formatDatetime(new Date());
  if (def.primaryKey.includes('id')) attrs.id ??= randomUUID();
  if ('created_at' in def.attributes) attrs.created_at = now;
  switch (def.name) {
    case 'Project':
      attrs.context_type = 'show';
      attrs.status ??= 'active';
      attrs.is_private ??= false;
      break;
    case 'Sequence':
    case 'Shot':
    case 'Task': {
      attrs.context_type = 'task';
      attrs.status_id ??= context.defaultContextStatusId;
      // project_id follows the parent; one given that differs is refused with the immutable check below.
      const parent = typeof attrs.parent_id === 'string' ? context.store.byId(attrs.parent_id) : undefined;
      const project = parent ? context.store.projectIdOf(parent) : null;
      if (attrs.project_id !== undefined && attrs.project_id !== project) throw validationError('project_id is set from the parent and cannot be given.');
      attrs.project_id = project;
      break;
    }
    case 'AssetVersion': {
      attrs.user_id ??= context.actor.userId;
      attrs.is_published ??= true;
      attrs.date ??= now;
      // The next number in the asset, as the server assigns it when none is given.
      if (attrs.version === undefined || attrs.version === null) {
        const siblings = context.store.all('AssetVersion').filter((version) => version.attrs.asset_id === attrs.asset_id);
        attrs.version = siblings.reduce((max, version) => Math.max(max, Number(version.attrs.version ?? 0)), 0) + 1;
      }
      break;
    }
    case 'FileComponent':
      attrs.system_type = 'file';
      attrs.name ??= 'main';
      attrs.file_type ??= '';
      attrs.size ??= 0;
      break;
    case 'ComponentLocation':
      attrs.resource_identifier ??= null;
      break;
    case 'Note':
      attrs.user_id ??= context.actor.userId;
      attrs.date ??= now;
      break;
    case 'AssetVersionList':
      attrs.owner_id ??= context.actor.userId;
      attrs.is_open ??= true;
      attrs.date ??= now;
      break;
    default:
      break;
  }
}

/** Every foreign key names an existing entity of the right type that the user can see. */
function checkReferences(context: WriteContext, entity: Entity): void {
  const def = entityDef(entity.type);
  for (const [name, attribute] of Object.entries(def.attributes)) {
    if (attribute.kind === 'ref' || attribute.kind === 'collection' || !attribute.foreignKeyOf) continue;
    const value = entity.attrs[name];
    if (value === null || value === undefined) continue;
    const related = context.store.find(attribute.foreignKeyOf, [String(value)]);
    if (!related || !context.actor.canRead(related)) {
      throw validationError(`"${name}" of ${def.name} refers to ${attribute.foreignKeyOf} "${String(value)}", which does not exist.`);
    }
  }
  if (entity.type === 'Metadata' || entity.type === 'Note') {
    const parent = typeof entity.attrs.parent_id === 'string' ? context.store.byId(entity.attrs.parent_id) : undefined;
    if (!parent || !context.actor.canRead(parent)) throw validationError(`parent_id of ${entity.type} refers to "${String(entity.attrs.parent_id)}", which does not exist.`);
  }
  if (entity.type === 'Sequence' || entity.type === 'Shot' || entity.type === 'Task') {
    if (entity.attrs.parent_id === entity.attrs.id) throw validationError(`A ${entity.type} cannot be its own parent.`);
  }
}

/** One ComponentLocation per component and location: a component is in a location once. */
function checkUniqueInLocation(context: WriteContext, entity: Entity): void {
  if (entity.type !== 'ComponentLocation') return;
  const clash = context.store.withAttr('ComponentLocation', 'component_id', entity.attrs.component_id ?? null).some((other) => other.attrs.location_id === entity.attrs.location_id);
  if (clash) throw validationError(`Component "${String(entity.attrs.component_id)}" is already in location "${String(entity.attrs.location_id)}".`);
}

/**
 * Deletes an entity and what cannot live without it: a component's locations (and its data in the server location)
 * and metadata, a version's components, notes and metadata, an asset's versions. A context that still has children
 * or assets is refused.
 */
async function removeWithOwned(context: WriteContext, entity: Entity, depth: number): Promise<void> {
  if (depth > 8) throw validationError('Too deep a delete.');
  const store = context.store;
  const id = entity.attrs.id ?? null;
  const owned = (type: 'Metadata' | 'Note', key: string) => store.all(type).filter((other) => other.attrs[key] === id);
  switch (entity.type) {
    case 'Project':
    case 'Sequence':
    case 'Shot':
    case 'Task': {
      const children = store.all('TypedContext').some((child) => child.attrs.parent_id === id);
      const assets = store.all('Asset').some((asset) => asset.attrs.context_id === id);
      if (children || assets) throw validationError(`${entity.type} "${String(entity.attrs.name)}" still has children or assets.`);
      break;
    }
    case 'Asset':
      for (const version of store.withAttr('AssetVersion', 'asset_id', id)) await removeWithOwned(context, version, depth + 1);
      break;
    case 'AssetVersion':
      for (const component of store.withAttr('FileComponent', 'version_id', id)) await removeWithOwned(context, component, depth + 1);
      for (const item of store.all('ListObject').filter((listed) => listed.attrs.entity_id === id)) store.remove(item);
      break;
    case 'AssetVersionList':
      for (const item of store.all('ListObject').filter((listed) => listed.attrs.list_id === id)) store.remove(item);
      break;
    case 'Note':
      for (const link of store.all('NoteComponent').filter((c) => c.attrs.note_id === id)) store.remove(link);
      break;
    case 'FileComponent':
      for (const link of store.withAttr('NoteComponent', 'component_id', id)) store.remove(link);
      for (const placed of store.withAttr('ComponentLocation', 'component_id', id)) {
        if (placed.attrs.location_id === SERVER_LOCATION_ID && typeof placed.attrs.resource_identifier === 'string') {
          await context.removeData(placed.attrs.resource_identifier);
        }
        store.remove(placed);
      }
      break;
    default:
      break;
  }
  for (const item of owned('Metadata', 'parent_id')) store.remove(item);
  for (const note of owned('Note', 'parent_id')) await removeWithOwned(context, note, depth + 1);
  store.remove(entity);
}

function keyText(def: EntityDef, attrs: Record<string, StoredValue>): string {
  return JSON.stringify(def.primaryKey.map((name) => attrs[name]));
}

import { badRequest } from './api-errors.ts';
import { resolveEntityType, fieldDef, type EntityType, type FieldDef } from './schema.ts';
import type { EntityRef, FileValue, RecordStore, StoredRecord, StoredValue } from './records.ts';

// Field values as clients send them in create and update bodies, checked as ShotGrid checks them and turned
// into what the store keeps. Entity links must name an existing record of an allowed type that the user can see.

export interface InputContext {
  store: RecordStore;
  canSee(record: StoredRecord): boolean;
}

export function parseFieldValues(
  type: EntityType,
  body: unknown,
  context: InputContext,
): Record<string, StoredValue> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The request body must be a JSON object of field values');
  }
  const values: Record<string, StoredValue> = {};
  for (const [name, raw] of Object.entries(body)) {
    const field = fieldDef(type, name);
    if (!field) throw badRequest(`${type} does not have a field named '${name}'`, { [name]: 'unknown field' });
    if (field.readOnly) throw badRequest(`${type}.${name} is read-only`, { [name]: 'read-only field' });
    values[name] = parseValue(type, name, field, raw, context);
  }
  return values;
}

function parseValue(type: EntityType, name: string, field: FieldDef, raw: unknown, context: InputContext): StoredValue {
  const fail = (expected: string): never => {
    throw badRequest(`${type}.${name} expects ${expected}`, { [name]: 'invalid value' });
  };
  if (raw === null) return field.type === 'multi_entity' ? [] : null;
  switch (field.type) {
    case 'text':
    case 'status_list':
    case 'list':
    case 'date_time':
      return typeof raw === 'string' ? raw : fail('a string');
    case 'number':
      return typeof raw === 'number' && Number.isInteger(raw) ? raw : fail('an integer');
    case 'float':
      return typeof raw === 'number' && Number.isFinite(raw) ? raw : fail('a number');
    case 'checkbox':
      return typeof raw === 'boolean' ? raw : fail('true or false');
    case 'entity':
      return parseRef(raw, field, context) ?? fail(`an entity link {type, id} to ${field.links?.join(' or ')}`);
    case 'multi_entity': {
      if (!Array.isArray(raw)) return fail('a list of entity links');
      const refs = raw.map((item) => parseRef(item, field, context) ?? fail(`links to ${field.links?.join(' or ')}`));
      return dedupe(refs);
    }
    case 'url':
      return parseLinkValue(raw, context) ?? fail('a web link {url, name} or a local link {local_storage, relative_path}; uploads go through _upload');
    case 'image':
      return fail('an upload through the image _upload endpoint');
  }
}

function parseRef(raw: unknown, field: FieldDef, context: InputContext): EntityRef | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { type, id } = raw as { type?: unknown; id?: unknown };
  if (typeof type !== 'string' || typeof id !== 'number') return undefined;
  const entityType = resolveEntityType(type);
  if (!entityType || entityType !== type || !field.links?.includes(entityType)) return undefined;
  const record = context.store.get(entityType, id);
  if (!record || !context.canSee(record)) {
    throw badRequest(`${type} ${id} does not exist or is not visible to this user`);
  }
  return { type: entityType, id };
}

function parseLinkValue(raw: unknown, context: InputContext): FileValue | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const value = raw as Record<string, unknown>;
  const name = typeof value.name === 'string' ? value.name : undefined;
  const contentType = typeof value.content_type === 'string' ? value.content_type : null;
  if ((value.link_type === 'web' || value.link_type === undefined) && typeof value.url === 'string') {
    return { link_type: 'web', url: value.url, name: name ?? value.url, content_type: contentType };
  }
  if (value.link_type === 'local' && typeof value.relative_path === 'string') {
    const storage = value.local_storage as { type?: unknown; id?: unknown } | undefined;
    if (storage?.type !== 'LocalStorage' || typeof storage.id !== 'number') return undefined;
    if (!context.store.get('LocalStorage', storage.id)) throw badRequest(`LocalStorage ${storage.id} does not exist`);
    const relative = value.relative_path.replace(/\\/g, '/').replace(/^\/+/, '');
    return {
      link_type: 'local',
      localStorageId: storage.id,
      relative_path: relative,
      name: name ?? relative.split('/').pop() ?? relative,
      content_type: contentType,
    };
  }
  return undefined;
}

function dedupe(refs: EntityRef[]): EntityRef[] {
  const seen = new Set<string>();
  return refs.filter((ref) => {
    const key = `${ref.type}:${ref.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

import { badRequest } from './api-errors.ts';
import { entityDef, fieldDef, type EntityType } from './schema.ts';
import {
  isEntityRef,
  isFileValue,
  isImageValue,
  type EntityRef,
  type FileValue,
  type StoredRecord,
  type StoredValue,
} from './records.ts';
import type { SiteContext } from './site-context.ts';

// Records as ShotGrid's REST API writes them: {type, id, attributes, relationships, links}. Entity fields go in
// relationships, everything else in attributes; file fields become file values, thumbnails signed URLs.

export const TRANSIENT_THUMBNAIL_PATH = '/images/status/transient/thumbnail_pending.png';

export type FieldSelection = readonly string[] | '*';

export function linkPath(ref: EntityRef): string {
  return `/api/v1/entity/${entityDef(ref.type).plural}/${ref.id}`;
}

/**
 * Parses `fields` as ShotGrid reads it (shotgrid-rest.md, Reading): the string "*" for every field, else a comma
 * string or a list of names. A name the entity lacks is dropped silently, as the live site answers 200 without
 * the key (ksallee/sg-groundtruth, findings 003 and 023): so a list holding "*" asks for a field named "*", which
 * no entity has, and only type and id come back. Names are taken as written, not trimmed, and dotted paths
 * (`entity.Shot.code`), which a real site resolves, are dropped too: the sandbox does not play them. No `fields` at
 * all reads every field.
 */
export function parseFields(type: EntityType, input: unknown): FieldSelection {
  if (input === undefined || input === null || input === '*') return '*';
  const names = Array.isArray(input) ? input : typeof input === 'string' ? input.split(',') : null;
  if (!names || !names.every((name): name is string => typeof name === 'string')) {
    throw badRequest('fields must be "*", a comma-separated string or a list of field names', { parameter: 'fields' });
  }
  return names.filter((name) => fieldDef(type, name) !== undefined);
}

export interface RenderedRecord {
  type: EntityType;
  id: number;
  attributes: Record<string, unknown>;
  relationships: Record<string, { data: unknown; links?: { related: string } }>;
  links: { self: string };
}

export async function renderRecord(site: SiteContext, record: StoredRecord, fields: FieldSelection): Promise<RenderedRecord> {
  const def = entityDef(record.type);
  const names = fields === '*' ? Object.keys(def.fields) : fields;
  const attributes: Record<string, unknown> = {};
  const relationships: RenderedRecord['relationships'] = {};
  for (const name of names) {
    const field = fieldDef(record.type, name);
    if (!field || name === 'id') continue;
    const value = record.fields[name] ?? null;
    if (field.writeOnly) {
      attributes[name] = null;
    } else if (field.type === 'entity') {
      const ref = isEntityRef(value) ? entityLink(site, value) : null;
      relationships[name] = ref ? { data: ref, links: { related: linkPath(ref) } } : { data: null };
    } else if (field.type === 'multi_entity') {
      relationships[name] = { data: Array.isArray(value) ? value.map((ref) => entityLink(site, ref)) : [] };
    } else if (field.type === 'url') {
      attributes[name] = isFileValue(value) ? renderFileValue(site, value) : null;
    } else if (field.type === 'image') {
      attributes[name] = await renderImage(site, value);
    } else {
      attributes[name] = value;
    }
  }
  return { type: record.type, id: record.id, attributes, relationships, links: { self: linkPath(record) } };
}

export function entityLink(site: SiteContext, ref: EntityRef): { type: EntityType; id: number; name: string | null } {
  return { type: ref.type, id: ref.id, name: site.store.nameOf(ref) };
}

export function renderFileValue(site: SiteContext, value: FileValue): Record<string, unknown> {
  const attachment = value.attachmentId === undefined ? {} : { type: 'Attachment', id: value.attachmentId };
  switch (value.link_type) {
    case 'upload':
      return {
        ...attachment,
        name: value.name,
        content_type: value.content_type,
        link_type: 'upload',
        url: `${site.siteUrl()}/file_serve/attachment/${value.attachmentId}`,
      };
    case 'web':
      return { ...attachment, name: value.name, content_type: value.content_type, link_type: 'web', url: value.url };
    case 'local': {
      const storage = site.store.get('LocalStorage', value.localStorageId);
      const root = (field: string): string => String(storage?.fields[field] ?? '');
      const linux = joinPath(root('linux_path'), value.relative_path, '/');
      return {
        ...attachment,
        name: value.name,
        content_type: value.content_type,
        link_type: 'local',
        local_path: linux,
        local_path_linux: linux,
        local_path_mac: joinPath(root('mac_path'), value.relative_path, '/'),
        local_path_windows: joinPath(root('windows_path'), value.relative_path, '\\'),
        local_storage: storage ? entityLink(site, { type: 'LocalStorage', id: storage.id }) : null,
        relative_path: value.relative_path,
        url: `file://${encodeURI(linux)}`,
      };
    }
  }
}

/** A thumbnail as ShotGrid shows it: null, the transient placeholder while it is processed, or a signed URL. */
export async function renderImage(site: SiteContext, value: StoredValue): Promise<string | null> {
  if (!isImageValue(value)) return null;
  if (Date.now() < value.readyAt) return `${site.siteUrl()}${TRANSIENT_THUMBNAIL_PATH}`;
  if (value.failed) return null;
  return site.storage.presign('GET', value.key, { expiresIn: site.signedUrlSeconds });
}

function joinPath(root: string, relative: string, separator: '/' | '\\'): string {
  const trimmed = root.replace(/[\\/]+$/, '');
  return `${trimmed}${separator}${relative.split('/').join(separator)}`;
}

import { entityDef, fieldDef, type EntityType } from './schema.ts';

// The sandbox site's records, held in memory (file bytes live in object storage, never here).

export interface EntityRef {
  type: EntityType;
  id: number;
}

/** A file/link field's value as the site keeps it; rendered to ShotGrid's JSON by the REST layer. */
export type FileValue =
  | {
      link_type: 'upload';
      /** The Attachment record that holds the bytes (for Attachment.this_file: the record itself). */
      attachmentId: number;
      name: string;
      content_type: string;
      /** Object key in storage. */
      key: string;
      size: number;
    }
  | { link_type: 'web'; url: string; name: string; content_type: string | null; attachmentId?: number }
  | {
      link_type: 'local';
      attachmentId?: number;
      localStorageId: number;
      /** Path below the LocalStorage root, with forward slashes. */
      relative_path: string;
      name: string;
      content_type: string | null;
    };

/**
 * A thumbnail: shown as the transient placeholder until `readyAt`, then as a signed URL to `key` — or as null
 * when the upload was no image, as ShotGrid shows a thumbnail whose processing failed.
 */
export interface ImageValue {
  key: string;
  content_type: string;
  readyAt: number;
  failed: boolean;
}

export type StoredValue = string | number | boolean | null | EntityRef | EntityRef[] | FileValue | ImageValue;

export interface StoredRecord {
  type: EntityType;
  id: number;
  retired: boolean;
  fields: Record<string, StoredValue>;
}

export function isEntityRef(value: unknown): value is EntityRef {
  return typeof value === 'object' && value !== null && 'type' in value && 'id' in value && !('link_type' in value);
}

export function isFileValue(value: unknown): value is FileValue {
  return typeof value === 'object' && value !== null && 'link_type' in value;
}

export function isImageValue(value: unknown): value is ImageValue {
  return typeof value === 'object' && value !== null && 'readyAt' in value && 'key' in value;
}

export class RecordStore {
  readonly #byType = new Map<EntityType, Map<number, StoredRecord>>();
  // Ids count per entity type, as on a real site: Version 5 and Shot 5 both exist, so mixing up types shows.
  readonly #nextId = new Map<EntityType, number>();

  /** Adds a record with the next id. Stamps created_at/updated_at; created_by when given. */
  insert(type: EntityType, fields: Record<string, StoredValue>, by?: EntityRef): StoredRecord {
    const now = isoSeconds(new Date());
    const id = this.#nextId.get(type) ?? 1;
    this.#nextId.set(type, id + 1);
    const record: StoredRecord = {
      type,
      id,
      retired: false,
      fields: { ...fields, id, created_at: now, updated_at: now, created_by: by ?? null, updated_by: by ?? null },
    };
    this.#table(type).set(id, record);
    return record;
  }

  get(type: EntityType, id: number): StoredRecord | undefined {
    const record = this.#table(type).get(id);
    return record && !record.retired ? record : undefined;
  }

  getRef(ref: EntityRef): StoredRecord | undefined {
    return this.get(ref.type, ref.id);
  }

  /** Live (not retired) records of a type, in id order. */
  all(type: EntityType): StoredRecord[] {
    return [...this.#table(type).values()].filter((record) => !record.retired);
  }

  update(record: StoredRecord, fields: Record<string, StoredValue>, by?: EntityRef): StoredRecord {
    Object.assign(record.fields, fields, { updated_at: isoSeconds(new Date()) });
    if (by) record.fields.updated_by = by;
    return record;
  }

  retire(record: StoredRecord): void {
    record.retired = true;
  }

  /** The display name ShotGrid puts in entity links (`code`, `name`, `content`, …). */
  nameOf(ref: EntityRef): string | null {
    const record = this.#table(ref.type).get(ref.id);
    if (!record) return null;
    const value = record.fields[entityDef(ref.type).nameField];
    return typeof value === 'string' ? value : null;
  }

  /** The project a record belongs to, for project-scoped types (null for others or when unset). */
  projectOf(record: StoredRecord): number | null {
    if (!entityDef(record.type).projectScoped) return null;
    const value = record.fields.project;
    return isEntityRef(value) ? value.id : null;
  }

  hasField(type: EntityType, field: string): boolean {
    return fieldDef(type, field) !== undefined;
  }

  #table(type: EntityType): Map<number, StoredRecord> {
    let table = this.#byType.get(type);
    if (!table) {
      table = new Map();
      this.#byType.set(type, table);
    }
    return table;
  }
}

/** ShotGrid's date-time form: ISO 8601 in UTC to the second. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

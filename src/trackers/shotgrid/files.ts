import type { FileKinds, FileLink, FileRef, SelectedEntity } from '../tracker.ts';
import type { SgRecord, ShotgridSession } from './client.ts';
import { seamId, sgId } from './ids.ts';

// The files of a selection on ShotGrid (../shared/protocol/shotgrid-rest.md, "File and link field values"):
// attachments linked to the entities, their file/link fields, their thumbnails and their Notes' attachments.
// Every lookup is a paged search over chunks of ids, so the number of requests grows with the selection's
// size / 500, never with its entity count (2,000 entities, 10,000 files: a handful of requests per kind).

/** ShotGrid takes `in` lists of this many values comfortably; a page holds as many records. */
const ID_CHUNK = 500;
const ATTACHMENT_FIELDS = ['this_file', 'filename', 'file_size', 'attachment_links'];
const SOURCE_ORDER: Readonly<Record<FileRef['source'], number>> = { attachment: 0, field: 1, thumbnail: 2, 'note-attachment': 3 };
const THUMBNAIL_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
};

/** A selected entity the user can see, with the record read for it (with `*` when file fields are wanted). */
export interface SelectedRecord {
  entity: SelectedEntity;
  record: SgRecord;
}

/** A file/link value as ShotGrid writes it: upload, web or local. */
interface SgFileValue {
  link_type: 'upload' | 'web' | 'local';
  id?: unknown;
  name?: unknown;
  content_type?: unknown;
  url?: unknown;
  local_path?: unknown;
  relative_path?: unknown;
  local_storage?: unknown;
}

type EntityName = FileRef['entity'];

/** A file found, before its local storage (if any) is named. */
interface FoundFile {
  entity: EntityName;
  source: Exclude<FileRef['source'], 'thumbnail'>;
  field: string | null;
  value: SgFileValue;
  name: string;
  size: number | null;
}

export async function listSelectionFiles(session: ShotgridSession, selected: readonly SelectedRecord[], kinds: FileKinds): Promise<FileRef[]> {
  if (selected.length === 0) return [];
  // The kinds are independent queries: asked at once, a distant site's round trips overlap (the client caps them).
  const found: FoundFile[] = (
    await Promise.all([
      kinds.attachments ? attachmentFiles(session, selected) : [],
      kinds.fields ? fieldFiles(session, selected) : [],
      kinds.noteAttachments ? noteAttachmentFiles(session, selected) : [],
    ])
  ).flat();
  const storageCodes = await localStorageCodes(session, found);
  const files = found.map((file) => fileRef(file, storageCodes));
  if (kinds.thumbnails) files.push(...selected.flatMap(thumbnailFile));
  const position = new Map<string, number>(selected.map((s, index) => [s.entity.id, index]));
  return files.sort((a, b) => compareFiles(a, b, position));
}

/** Attachments linked to the selected entities: one file per (attachment, selected entity it links to). */
async function attachmentFiles(session: ShotgridSession, selected: readonly SelectedRecord[]): Promise<FoundFile[]> {
  const entities = entityIndex(selected);
  const attachments = await findLinkedTo(session, 'Attachment', 'attachment_links', selected.map(refOf), ATTACHMENT_FIELDS);
  return attachments.flatMap((attachment) =>
    linksOf(attachment.attachment_links).flatMap((link) => {
      const entity = entities.get(refKey(link));
      const file = entity ? attachmentFile(attachment, entity, 'attachment') : null;
      return file ? [file] : [];
    }),
  );
}

/**
 * Every attribute holding a file/link value (no schema call: the records were read with `*`), with upload
 * sizes from their Attachments (field values do not carry a size).
 */
async function fieldFiles(session: ShotgridSession, selected: readonly SelectedRecord[]): Promise<FoundFile[]> {
  const files: FoundFile[] = [];
  for (const { entity, record } of selected) {
    for (const field of Object.keys(record).sort()) {
      const value = asFileValue(record[field]);
      if (!value) continue;
      const name = nonEmpty(value.name) ?? field;
      files.push({ entity: entityName(entity), source: 'field', field, value, name, size: null });
    }
  }
  const uploadIds = [...new Set(files.flatMap((f) => (f.value.link_type === 'upload' && typeof f.value.id === 'number' ? [f.value.id] : [])))];
  const sizes = new Map<number, number>();
  for (const chunk of chunks(uploadIds)) {
    for (const attachment of await session.find('Attachment', [['id', 'in', chunk]], ['file_size'], { sort: 'id' })) {
      if (typeof attachment.file_size === 'number') sizes.set(attachment.id, attachment.file_size);
    }
  }
  for (const file of files) {
    if (file.value.link_type === 'upload' && typeof file.value.id === 'number') file.size = sizes.get(file.value.id) ?? null;
  }
  return files;
}

/** Attachments of the Notes linked to the selected entities, once per selected entity each note links to. */
async function noteAttachmentFiles(session: ShotgridSession, selected: readonly SelectedRecord[]): Promise<FoundFile[]> {
  const entities = entityIndex(selected);
  const notes = await findLinkedTo(session, 'Note', 'note_links', selected.map(refOf), ['note_links']);
  // Note id → the selected entities it is about.
  const aboutOf = new Map<number, EntityName[]>();
  for (const note of notes) {
    const about = linksOf(note.note_links).flatMap((link) => entities.get(refKey(link)) ?? []);
    if (about.length) aboutOf.set(note.id, about);
  }
  const attachments = await findLinkedTo(
    session,
    'Attachment',
    'attachment_links',
    [...aboutOf.keys()].map((id) => ({ type: 'Note', id })),
    ATTACHMENT_FIELDS,
  );
  const files: FoundFile[] = [];
  for (const attachment of attachments) {
    // An attachment on two notes about the same entity is still one file of that entity.
    const seen = new Set<string>();
    for (const link of linksOf(attachment.attachment_links)) {
      if (link.type !== 'Note') continue;
      for (const entity of aboutOf.get(link.id) ?? []) {
        if (seen.has(entity.id)) continue;
        seen.add(entity.id);
        const file = attachmentFile(attachment, entity, 'note-attachment');
        if (file) files.push(file);
      }
    }
  }
  return files;
}

/** The selected entity's thumbnail when it has a real one (not none, not the transient placeholder). */
function thumbnailFile({ entity }: SelectedRecord): FileRef[] {
  if (entity.thumbnail.state !== 'ready') return [];
  const extension = thumbnailExtension(entity.thumbnail.url);
  return [
    {
      entity: entityName(entity),
      source: 'thumbnail',
      field: 'image',
      attachmentId: null,
      name: `thumbnail${extension}`,
      // The site does not state a thumbnail's size: the caller asks storage.
      size: null,
      contentType: THUMBNAIL_TYPES[extension] ?? null,
      link: { type: 'upload' },
    },
  ];
}

/** The extension of a thumbnail URL's path (signed URLs carry it before the query), `.jpg` when it has none. */
function thumbnailExtension(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return '.jpg';
  }
  const match = /\.([A-Za-z0-9]{1,5})$/.exec(path);
  return match ? `.${match[1]!.toLowerCase()}` : '.jpg';
}

/**
 * Every record of `type` whose `linkField` holds one of `refs`, chunk by chunk, page by page (sorted by id so
 * pages do not shift). A record found through two chunks is kept once.
 */
async function findLinkedTo(
  session: ShotgridSession,
  type: string,
  linkField: string,
  refs: readonly { type: string; id: number }[],
  fields: readonly string[],
): Promise<SgRecord[]> {
  const byId = new Map<number, SgRecord>();
  for (const chunk of chunks(refs)) {
    const filter = [[linkField, 'in', chunk.map(({ type: t, id }) => ({ type: t, id }))]];
    for (const record of await session.find(type, filter, fields, { sort: 'id' })) byId.set(record.id, record);
  }
  return [...byId.values()];
}

/** LocalStorage id → code, in one query for all local links found. */
async function localStorageCodes(session: ShotgridSession, found: readonly FoundFile[]): Promise<Map<number, string>> {
  const ids = [...new Set(found.flatMap((f) => (f.value.link_type === 'local' ? (storageOf(f.value)?.id ?? []) : [])))];
  const codes = new Map<number, string>();
  for (const chunk of chunks(ids)) {
    for (const storage of await session.find('LocalStorage', [['id', 'in', chunk]], ['code'], { sort: 'id' })) {
      const code = nonEmpty(storage.code);
      if (code) codes.set(storage.id, code);
    }
  }
  return codes;
}

function attachmentFile(attachment: SgRecord, entity: EntityName, source: FoundFile['source']): FoundFile | null {
  const value = asFileValue(attachment.this_file);
  if (!value) return null;
  return {
    entity,
    source,
    field: null,
    value: { ...value, id: attachment.id },
    // An uploaded file's own name (with its extension), not the display name people gave it: two files both
    // displayed as "Client reference board" are still board.pdf and board.png in a zip.
    name: (value.link_type === 'upload' ? nonEmpty(attachment.filename) : null) ?? nonEmpty(value.name) ?? nonEmpty(attachment.filename) ?? `attachment ${attachment.id}`,
    size: typeof attachment.file_size === 'number' ? attachment.file_size : null,
  };
}

function fileRef(file: FoundFile, storageCodes: ReadonlyMap<number, string>): FileRef {
  return {
    entity: file.entity,
    source: file.source,
    field: file.field,
    attachmentId: typeof file.value.id === 'number' ? seamId(file.value.id) : null,
    name: file.name,
    size: file.size,
    contentType: nonEmpty(file.value.content_type),
    link: linkOf(file.value, storageCodes),
  };
}

function linkOf(value: SgFileValue, storageCodes: ReadonlyMap<number, string>): FileLink {
  switch (value.link_type) {
    case 'upload':
      return { type: 'upload' };
    case 'web':
      return { type: 'web', url: typeof value.url === 'string' ? value.url : '' };
    case 'local': {
      const storage = storageOf(value);
      // The link's own name for its storage is the storage's display name, which is its code: the fallback
      // when the user may not read LocalStorage.
      const code = storage ? (storageCodes.get(storage.id) ?? storage.name) : null;
      return { type: 'local', storageCode: code, relativePath: nonEmpty(value.relative_path), localPath: nonEmpty(value.local_path) };
    }
  }
}

function storageOf(value: SgFileValue): { id: number; name: string | null } | null {
  const storage = value.local_storage as { id?: unknown; name?: unknown } | null | undefined;
  return storage && typeof storage.id === 'number' ? { id: storage.id, name: nonEmpty(storage.name) } : null;
}

function asFileValue(value: unknown): SgFileValue | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const linkType = (value as { link_type?: unknown }).link_type;
  return linkType === 'upload' || linkType === 'web' || linkType === 'local' ? (value as SgFileValue) : null;
}

/** Entity, then source (attachments, fields, thumbnail, note attachments), then name, attachment id, field. */
function compareFiles(a: FileRef, b: FileRef, position: ReadonlyMap<string, number>): number {
  return (
    (position.get(a.entity.id) ?? 0) - (position.get(b.entity.id) ?? 0) ||
    SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source] ||
    compareText(a.name, b.name) ||
    Number(a.attachmentId ?? 0) - Number(b.attachmentId ?? 0) ||
    compareText(a.field ?? '', b.field ?? '')
  );
}

/** By code unit, not locale: the same names sort the same on every server. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function entityIndex(selected: readonly SelectedRecord[]): Map<string, EntityName> {
  return new Map(selected.map(({ entity }) => [refKey(entity), entityName(entity)]));
}

function entityName(entity: SelectedEntity): EntityName {
  return { type: entity.type, id: entity.id, name: entity.name };
}

function refOf({ entity }: SelectedRecord): { type: string; id: number } {
  return { type: entity.type, id: sgId(entity.id) };
}

/** The same key for a record whether its id is the site's number or the seam's string of it. */
function refKey(ref: { type: string; id: number | string }): string {
  return `${ref.type}:${ref.id}`;
}

/** The {type, id} entries of a multi-entity value (tolerating null and malformed entries). */
function linksOf(value: unknown): { type: string; id: number }[] {
  if (!Array.isArray(value)) return [];
  return value.filter((link): link is { type: string; id: number } => typeof link?.type === 'string' && typeof link?.id === 'number');
}

function nonEmpty(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += ID_CHUNK) out.push(items.slice(start, start + ID_CHUNK));
  return out;
}

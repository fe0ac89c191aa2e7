import mime from 'mime-types';
import type { FileKinds, FileLink, FileRef } from '../tracker.ts';
import type { FtrackApi, FtrackEntity } from './api.ts';
import { chunks, componentFileName, datetimeText, idList, nameOf, SERVER_LOCATION_ID, UNMANAGED_LOCATION_ID } from './entities.ts';

// The files of selected entities, as ftrack holds them: FileComponents and where each is.
// - An AssetVersion's components are its files (its review media among them): listed as `field` files of the
//   field `components`, when fields or attachments are asked (ftrack has no separate attachment list on a
//   version; an attachment uploaded to a version is one more component).
// - Anything else has files only through its Notes (NoteComponent: the web UI's note attachments): `attachment`
//   files when attachments are asked (that is where this service attaches them), else `note-attachment` ones.
//   A version's notes' files are `note-attachment`s.
// - The thumbnail: the component `thumbnail_id` names, listed under `thumbnail` and nowhere else.
// A component with data in ftrack.server is an upload; one only in another location is a path there.

const COMPONENT = ['name', 'file_type', 'size', 'created_at', 'component_locations.location_id', 'component_locations.resource_identifier'];

export interface ListedEntity {
  type: string;
  id: string;
  entity: FtrackEntity;
}

export async function listEntityFiles(api: FtrackApi, login: string, entities: readonly ListedEntity[], kinds: FileKinds): Promise<FileRef[]> {
  const files: FileRef[][] = entities.map(() => []);
  const at = new Map(entities.map((listed, index) => [listed.id, index]));
  const ref = (listed: ListedEntity) => ({ type: listed.type, id: listed.id, name: nameOf(listed.entity) });
  const thumbnailIds = new Set(entities.flatMap((listed) => (typeof listed.entity.thumbnail_id === 'string' ? [listed.entity.thumbnail_id] : [])));

  const versions = entities.filter((listed) => listed.type === 'AssetVersion');
  const versionComponents = async (): Promise<void> => {
    if (!(kinds.fields || kinds.attachments) || versions.length === 0) return;
    for (const chunk of chunks(versions.map((listed) => listed.id))) {
      const components = await api.query(login, `select ${COMPONENT.join(', ')}, version_id from FileComponent where version_id in ${idList(chunk)}`);
      for (const component of components) {
        const index = at.get(String(component.version_id));
        if (index === undefined || thumbnailIds.has(String(component.id))) continue;
        const file = fileOf(ref(entities[index]!), component, 'field', 'components');
        if (file) files[index]!.push(file);
      }
    }
  };

  const noteSource = (listed: ListedEntity): FileRef['source'] | null =>
    listed.type !== 'AssetVersion' && kinds.attachments ? 'attachment' : kinds.noteAttachments ? 'note-attachment' : null;
  const withNotes = entities.filter((listed) => noteSource(listed) !== null);
  const noteComponents = async (): Promise<void> => {
    for (const chunk of chunks(withNotes.map((listed) => listed.id))) {
      const links = await api.query(login, `select note.parent_id, ${COMPONENT.map((path) => `component.${path}`).join(', ')} from NoteComponent where note.parent_id in ${idList(chunk)}`);
      for (const link of links) {
        const parentId = (link.note as { parent_id?: unknown } | undefined)?.parent_id;
        const index = at.get(String(parentId));
        const component = link.component as FtrackEntity | undefined;
        if (index === undefined || !component) continue;
        const file = fileOf(ref(entities[index]!), component, noteSource(entities[index]!)!, null);
        if (file) files[index]!.push(file);
      }
    }
  };

  const thumbnails = async (): Promise<void> => {
    if (!kinds.thumbnails || thumbnailIds.size === 0) return;
    const byId = new Map<string, FtrackEntity>();
    for (const chunk of chunks([...thumbnailIds])) {
      for (const component of await api.query(login, `select ${COMPONENT.join(', ')} from FileComponent where id in ${idList(chunk)}`)) byId.set(String(component.id), component);
    }
    entities.forEach((listed, index) => {
      const component = byId.get(String(listed.entity.thumbnail_id));
      const file = component ? fileOf(ref(listed), component, 'thumbnail', 'thumbnail_id') : null;
      if (file) files[index]!.push(file);
    });
  };
  // Independent queries: asked at once, a distant server's round trips overlap (the API caps them); the order is
  // the sort's below.
  await Promise.all([versionComponents(), noteComponents(), thumbnails()]);

  const order: Record<FileRef['source'], number> = { attachment: 0, field: 1, thumbnail: 2, 'note-attachment': 3 };
  return files.flatMap((own) => own.sort((a, b) => order[a.source] - order[b.source] || a.name.localeCompare(b.name) || String(a.attachmentId).localeCompare(String(b.attachmentId))));
}

/** A component as a FileRef, or null when no location holds it. `attachmentId` is the component: what locateFile asks for. */
function fileOf(entity: FileRef['entity'], component: FtrackEntity, source: FileRef['source'], field: string | null): FileRef | null {
  const link = linkOf(component);
  if (!link || typeof component.id !== 'string') return null;
  const name = componentFileName(component);
  return {
    entity,
    source,
    field,
    attachmentId: component.id,
    name,
    size: typeof component.size === 'number' && link.type === 'upload' ? component.size : null,
    contentType: mime.lookup(name) || null,
    link,
  };
}

function linkOf(component: FtrackEntity): FileLink | null {
  const locations = Array.isArray(component.component_locations) ? (component.component_locations as { location_id?: unknown; resource_identifier?: unknown }[]) : [];
  if (locations.some((placed) => placed.location_id === SERVER_LOCATION_ID)) return { type: 'upload' };
  const elsewhere = locations.find((placed) => typeof placed.resource_identifier === 'string' && placed.resource_identifier !== '');
  if (!elsewhere) return null;
  const path = elsewhere.resource_identifier as string;
  // ftrack.unmanaged holds full paths; a managed disk location, paths under its prefix (the location id names it).
  return elsewhere.location_id === UNMANAGED_LOCATION_ID
    ? { type: 'local', storageCode: null, relativePath: null, localPath: path }
    : { type: 'local', storageCode: String(elsewhere.location_id), relativePath: path, localPath: null };
}

/** The newest of a version's components that is its review media: ftrack's own `ftrackreview-*`, or an upload marked as one. */
export function reviewComponentOf(components: readonly FtrackEntity[], markedIds: ReadonlySet<string>): FtrackEntity | null {
  const candidates = components.filter((component) => (typeof component.name === 'string' && component.name.startsWith('ftrackreview-')) || markedIds.has(String(component.id)));
  let newest: FtrackEntity | null = null;
  for (const component of candidates) {
    if (newest === null || datetimeText(component.created_at) >= datetimeText(newest.created_at)) newest = component;
  }
  return newest;
}


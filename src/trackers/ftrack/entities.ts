import type { EntityId } from '../tracker.ts';
import { FtrackError } from './errors.ts';
import type { FtrackEntity } from './api.ts';

// ftrack's entities as the seam shows them: ids (UUID strings, taken as they come), names, the project and the web
// UI's link. Expressions are built here only from checked ids, known type names and quoted strings: nothing from a
// request reaches a query unchecked.

/** ftrack.server, whose data the server keeps (ftrack.md, "Upload into the server location"). */
export const SERVER_LOCATION_ID = '3a372bde-05bc-11e4-8908-20c9d081909b';
/** ftrack.unmanaged: files only referred to by path. */
export const UNMANAGED_LOCATION_ID = 'cb268ecc-8809-11e3-a7e2-20c9d081909b';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** Ids per `in (…)` clause: an expression stays well under a server's limits. */
export const ID_CHUNK = 100;

/** Whether a seam id can be an ftrack id; one that cannot names no record (it is not found, never queried). */
export function isFtrackId(id: string): boolean {
  return UUID.test(id);
}

/**
 * The schema's type for an entity type as the service may be given it: ftrack's own name (AssetVersion, Shot…),
 * or the lower-case word an action event's selection carries (`assetversion`, `show` for a project, `task` for
 * any typed context: ftrack.md, "Right-click actions").
 */
export function schemaType(entityType: string): string {
  switch (entityType) {
    case 'assetversion':
      return 'AssetVersion';
    case 'show':
      return 'Project';
    case 'task':
      return 'TypedContext';
    case 'Component':
    case 'component':
      return 'FileComponent';
    default:
      if (!TYPE_NAME.test(entityType)) throw new FtrackError('bad_request', `"${entityType.slice(0, 80)}" is not an ftrack entity type`);
      return entityType;
  }
}

/** A string as an expression's quoted literal. */
export function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** `(id1, id2…)` for checked ids. */
export function idList(ids: readonly string[]): string {
  return `(${ids.map((id) => {
    if (!isFtrackId(id)) throw new FtrackError('bad_request', 'not an ftrack id');
    return quoted(id);
  }).join(', ')})`;
}

export function chunks<T>(items: readonly T[], size = ID_CHUNK): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/** What a selected entity's query selects, by type. */
export function selectionProjection(type: string): string[] {
  switch (type) {
    case 'AssetVersion':
      return ['version', 'asset.name', 'link', 'thumbnail_id'];
    case 'Project':
      return ['name', 'full_name', 'thumbnail_id'];
    case 'Asset':
      return ['name', 'parent.link'];
    default:
      // Typed contexts (Shot, Task, Sequence, custom ones): a Task also shows what it belongs to.
      return ['name', 'link', 'thumbnail_id', ...(type === 'Task' || type === 'TypedContext' ? ['parent.name'] : [])];
  }
}

/** An entity's name as ftrack shows it: `name`, a version as `<asset> v<n>`, a project by its full name. */
export function nameOf(entity: FtrackEntity): string {
  const type = entity.__entity_type__ ?? '';
  if (type === 'AssetVersion') {
    const asset = (entity.asset as { name?: unknown } | null | undefined)?.name;
    return `${typeof asset === 'string' ? asset : 'version'} v${String(entity.version ?? '?')}`;
  }
  if (type === 'Project' && typeof entity.full_name === 'string' && entity.full_name !== '') return entity.full_name;
  return typeof entity.name === 'string' && entity.name !== '' ? entity.name : `${type} ${String(entity.id)}`;
}

/** The project at the head of an entity's `link` (the web UI's breadcrumb: [{type, id, name}] from the project). */
export function projectOf(entity: FtrackEntity): { id: EntityId; name: string | null } | null {
  if (entity.__entity_type__ === 'Project' && typeof entity.id === 'string') return { id: entity.id, name: nameOf(entity) };
  const link = (entity.link ?? (entity.parent as { link?: unknown } | null | undefined)?.link) as { type?: unknown; id?: unknown; name?: unknown }[] | undefined;
  const head = Array.isArray(link) ? link[0] : undefined;
  if (!head || head.type !== 'Project' || typeof head.id !== 'string') return null;
  return { id: head.id, name: typeof head.name === 'string' ? head.name : null };
}

/** A Task's parent, from the relation the query selected. */
export function parentOf(entity: FtrackEntity): { type: string; id: EntityId; name: string } | null {
  const parent = entity.parent as FtrackEntity | null | undefined;
  if (!parent || typeof parent.id !== 'string') return null;
  return { type: parent.__entity_type__ ?? 'TypedContext', id: parent.id, name: nameOf(parent) };
}

/**
 * The entity's page in ftrack's web UI. The form ftrack's own links use (the "copy link" of the sidebar): the
 * entity opened in the slide-out over its project's view; no version of ftrack.md settles it (UNCONFIRMED), and
 * the fragment is read by the browser only, so a wrong form lands on the project, not on an error.
 */
export function webUrl(serverUrl: string, type: string, id: EntityId, projectId: EntityId | null): string {
  const slide = type === 'Project' ? 'show' : type === 'AssetVersion' ? 'assetversion' : type === 'AssetVersionList' ? 'list' : 'task';
  const params = new URLSearchParams({ slideEntityId: id, slideEntityType: slide, itemId: 'projects' });
  if (projectId !== null) {
    params.set('entityId', projectId);
    params.set('entityType', 'show');
  }
  return `${serverUrl}/#${params.toString()}`;
}

/** `main.mov` → name `main`, file_type `.mov`, as the official uploader splits a file's name. */
export function splitFileName(fileName: string): { name: string; fileType: string } {
  const dot = fileName.lastIndexOf('.');
  if (dot <= 0 || dot === fileName.length - 1) return { name: fileName, fileType: '' };
  return { name: fileName.slice(0, dot), fileType: fileName.slice(dot) };
}

/** A component's file name: its name and type joined again. */
export function componentFileName(component: FtrackEntity): string {
  const name = typeof component.name === 'string' && component.name !== '' ? component.name : 'file';
  const fileType = typeof component.file_type === 'string' ? component.file_type : '';
  return `${name}${fileType}`;
}

/** ftrack's datetimes arrive as {"__type__":"datetime","value":"…"}: their text, sortable. */
export function datetimeText(value: unknown): string {
  if (typeof value === 'string') return value;
  const text = (value as { value?: unknown } | null | undefined)?.value;
  return typeof text === 'string' ? text : '';
}

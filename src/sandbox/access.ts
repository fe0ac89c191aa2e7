import type { Request } from 'express';
import { isEntityRef, type EntityRef, type RecordStore, type StoredRecord } from './records.ts';

// Who is asking, and what they may see and change. A script (ApiUser) sees everything; a person — signed in
// with a password, or a script acting as them through sudo — sees only the projects they are a member of, as on
// a site whose default permission rules keep artists to their projects.

export interface Viewer {
  /** The identity the request acts as: the sudo user when there is one. */
  user: EntityRef;
  /** The credential that signed in (an ApiUser for scripts, else the same HumanUser). */
  principal: EntityRef;
}

/** The viewer that requireViewer (auth.ts) authenticated for this request. */
export function viewerOf(req: Request): Viewer {
  return req.res!.locals.viewer;
}

export function isScript(viewer: Viewer): boolean {
  return viewer.user.type === 'ApiUser';
}

export function memberProjects(store: RecordStore, user: EntityRef): Set<number> {
  const ids = new Set<number>();
  for (const project of store.all('Project')) {
    const users = project.fields.users;
    if (Array.isArray(users) && users.some((ref) => ref.type === user.type && ref.id === user.id)) ids.add(project.id);
  }
  return ids;
}

/** Returns a predicate for what the viewer may see (computed once per request: membership rarely changes). */
export function visibilityFor(store: RecordStore, viewer: Viewer): (record: StoredRecord) => boolean {
  if (isScript(viewer)) return () => true;
  const projects = memberProjects(store, viewer.user);
  return (record) => {
    if (record.type === 'Project') return projects.has(record.id);
    if (record.type === 'ActionMenuItem' || record.type === 'ApiUser') return true;
    const project = record.fields.project;
    if (isEntityRef(project)) return projects.has(project.id);
    // Project-scoped records without a project (rare) are visible to all, as ShotGrid's default rules allow.
    return true;
  };
}

/** What the viewer may change: people may edit what they can see, but not projects, users or site setup. */
export function mayEdit(viewer: Viewer, record: StoredRecord, canSee: (record: StoredRecord) => boolean): boolean {
  if (isScript(viewer)) return true;
  if (!canSee(record)) return false;
  return !['Project', 'HumanUser', 'ApiUser', 'LocalStorage', 'ActionMenuItem'].includes(record.type);
}

import type { EntityRole } from '../tracker.ts';

// ftrack's entity types by what the actions do with them. Shot-like: the contexts a review version is made under
// (an Asset beneath them holds it): Shot, Sequence, and AssetBuild (what ShotGrid calls an Asset). ftrack's own
// `Asset` is the container of versions, not a thing to submit: it plays no role. The menu's lower-case names
// (`assetversion`…) read as their types; `task` is any TypedContext and must be looked up to know its role.
const roles: Readonly<Record<string, EntityRole>> = {
  AssetVersion: 'version',
  assetversion: 'version',
  Shot: 'shot-like',
  Sequence: 'shot-like',
  AssetBuild: 'shot-like',
  Task: 'task',
};

export function ftrackRoleOf(entityType: string): EntityRole {
  return Object.hasOwn(roles, entityType) ? roles[entityType]! : 'other';
}

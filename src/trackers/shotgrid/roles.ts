import type { EntityRole } from '../tracker.ts';

// ShotGrid's entity types by what the actions do with them (src/actions/registry.ts speaks roles).
const roles: Readonly<Record<string, EntityRole>> = { Version: 'version', Shot: 'shot-like', Asset: 'shot-like', Task: 'task' };

export function shotgridRoleOf(entityType: string): EntityRole {
  return Object.hasOwn(roles, entityType) ? roles[entityType]! : 'other';
}

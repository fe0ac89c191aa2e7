import type { EntityId } from './tracker.ts';

// A site's people, for an entry that learns only a user's name (ftrack's event hub names the launching user by
// username; a ShotGrid launch carries the id itself). Given by create-tracker's siteUsersOf where a site has it.

export interface SiteUser {
  id: EntityId;
  login: string;
}

export interface SiteUsers {
  /** The active user with this login (username), or null when there is none (unknown, or no longer active). */
  findUser(login: string): Promise<SiteUser | null>;
}

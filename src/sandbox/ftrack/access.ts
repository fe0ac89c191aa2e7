import { timingSafeEqual } from 'node:crypto';
import { invalidCredentials, permissionError } from './errors.ts';
import type { ConcreteTypeName } from './schema.ts';
import type { Entity, EntityStore } from './store.ts';

// Who is asking and what they may do. Every API call, download and hub handshake names a user and an API key
// (ftrack.md: "authenticate every request from its headers"). A user's personal key acts as that user only; the
// site's API key (ftrack's API keys in System settings) acts as whichever active user the request names, with
// that user's own rights (see README).

export type Role = 'administrator' | 'project manager' | 'user';
export type WriteAction = 'create' | 'update' | 'delete';

export interface Account {
  username: string;
  role: Role;
  /** Projects the user may see and work in ('all' for an administrator). */
  projects: 'all' | ReadonlySet<string>;
  personalApiKey: string | null;
}

/** Set up by administrators only. */
const siteTypes: ReadonlySet<ConcreteTypeName> = new Set(['Project', 'User', 'Status', 'Type', 'AssetType', 'Location', 'ListCategory']);
/** The project structure: project managers and administrators. */
const structureTypes: ReadonlySet<ConcreteTypeName> = new Set(['Sequence', 'Shot', 'Task']);

export class Accounts {
  readonly #store: EntityStore;
  readonly #siteApiKey: string;
  readonly #accounts = new Map<string, Account>();

  constructor(store: EntityStore, siteApiKey: string) {
    this.#store = store;
    this.#siteApiKey = siteApiKey;
  }

  add(account: Account): void {
    this.#accounts.set(account.username, account);
  }

  account(username: string): Account | undefined {
    return this.#accounts.get(username);
  }

  /** The actor for a user name and key, or InvalidCredentialsError (unknown or inactive user, wrong key). */
  authenticate(username: unknown, apiKey: unknown): Actor {
    if (typeof username !== 'string' || typeof apiKey !== 'string' || username === '' || apiKey === '') throw invalidCredentials();
    if (username.length > 256 || apiKey.length > 256) throw invalidCredentials();
    const account = this.#accounts.get(username);
    const user = this.#store.all('User').find((candidate) => candidate.attrs.username === username);
    if (!account || !user || user.attrs.is_active !== true) throw invalidCredentials();
    const keyFits = sameText(apiKey, this.#siteApiKey) || (account.personalApiKey !== null && sameText(apiKey, account.personalApiKey));
    if (!keyFits) throw invalidCredentials();
    return new Actor(this.#store, user, account);
  }

  /** The actor for a user, without a key: the sandbox's own menu page publishing as the user it plays. */
  actorFor(username: string): Actor | undefined {
    const account = this.#accounts.get(username);
    const user = this.#store.all('User').find((candidate) => candidate.attrs.username === username);
    return account && user && user.attrs.is_active === true ? new Actor(this.#store, user, account) : undefined;
  }
}

export class Actor {
  readonly #store: EntityStore;
  readonly user: Entity;
  readonly account: Account;

  constructor(store: EntityStore, user: Entity, account: Account) {
    this.#store = store;
    this.user = user;
    this.account = account;
  }

  get username(): string {
    return this.account.username;
  }

  get userId(): string {
    return this.user.attrs.id as string;
  }

  /** Entities outside every project (users, statuses, locations…) are visible to all; the rest by project. */
  canRead(entity: Entity): boolean {
    const project = this.#store.projectIdOf(entity);
    return project === null || this.#inProject(project);
  }

  /** PermissionError unless the user may `action` this entity (for a create: the entity about to be made). */
  checkWrite(action: WriteAction, entity: Entity): void {
    const role = this.account.role;
    const denied = (): Error => permissionError(`User "${this.username}" is not permitted to ${action} ${entity.type}.`);
    if (siteTypes.has(entity.type)) {
      if (role !== 'administrator') throw denied();
      return;
    }
    if (structureTypes.has(entity.type) && role === 'user') throw denied();
    const project = this.#store.projectIdOf(entity);
    if (project !== null && !this.#inProject(project)) throw denied();
  }

  #inProject(projectId: string): boolean {
    return this.account.projects === 'all' || this.account.projects.has(projectId);
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

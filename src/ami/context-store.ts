import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { EntityId } from '../trackers/tracker.ts';
import type { KeyValueStore, WriteOptions } from '../store/key-value-store.ts';
import { amiActions, type AmiAction } from './actions.ts';

// An action context is what a verified launch leaves behind for the action's page: who asked, on which site, for
// which entities. Its id is the only key to it and travels in the page's URL (ShotGrid's modal is a cross-site
// iframe where cookies may be blocked), so it is 256 random bits: as hard to guess as a session secret. Contexts
// expire with the store's TTL; a context that cannot be read back as one (bad JSON, an older format after a
// deploy) counts as expired, so the user is told to run the action again rather than shown an error.

export interface ActionContext {
  /** Unguessable: 32 random bytes, base64url (43 characters). */
  id: string;
  action: AmiAction;
  siteUrl: string;
  /** Ids are the seam's strings (src/trackers/tracker.ts): a ShotGrid launch's numbers, written as digits. */
  user: { id: EntityId; login: string };
  /** False only when accepted unsigned: the user is then taken on trust. */
  signed: boolean;
  entityType: string;
  selectedIds: EntityId[];
  project: { id: EntityId; name: string | null } | null;
  title: string | null;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601. */
  expiresAt: string;
}

export type NewActionContext = Omit<ActionContext, 'id' | 'createdAt' | 'expiresAt'>;

const idPattern = /^[A-Za-z0-9_-]{43}$/;

/** Whether value has the shape of a context id; says nothing about whether such a context exists. */
export function isContextId(value: string): boolean {
  return idPattern.test(value);
}

/** A seam id; a number in a context stored before ids were strings is read as its digits. */
const positiveId = z.union([z.number().int().positive().transform(String), z.string().regex(/^[A-Za-z0-9-]{1,64}$/)]);
const storedContext = z.object({
  id: z.string().regex(idPattern),
  action: z.enum(amiActions),
  siteUrl: z.string(),
  user: z.object({ id: positiveId, login: z.string() }),
  signed: z.boolean(),
  entityType: z.string(),
  selectedIds: z.array(positiveId),
  project: z.object({ id: positiveId, name: z.string().nullable() }).nullable(),
  title: z.string().nullable(),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
}) satisfies z.ZodType<ActionContext>;

const KEEP_ALIVE_STEP_SECONDS = 30;

export class ContextStore {
  readonly #store: KeyValueStore;
  readonly #ttlSeconds: number;

  constructor(store: KeyValueStore, ttlSeconds: number) {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError(`A context TTL must be a whole number of seconds, at least 1 (got ${ttlSeconds})`);
    }
    this.#store = store;
    this.#ttlSeconds = ttlSeconds;
  }

  async create(input: NewActionContext): Promise<ActionContext> {
    const createdAt = new Date();
    // Field by field, so nothing a caller happens to carry along is stored with it.
    const context: ActionContext = {
      id: randomBytes(32).toString('base64url'),
      action: input.action,
      siteUrl: input.siteUrl,
      user: { id: input.user.id, login: input.user.login },
      signed: input.signed,
      entityType: input.entityType,
      selectedIds: [...input.selectedIds],
      project: input.project === null ? null : { id: input.project.id, name: input.project.name },
      title: input.title,
      createdAt: createdAt.toISOString(),
      expiresAt: new Date(createdAt.getTime() + this.#ttlSeconds * 1000).toISOString(),
    };
    await this.#store.set(keyOf(context.id), JSON.stringify(context), this.#ttlSeconds, ownedBy(context));
    return context;
  }

  /** The context, or null when the id is malformed (the store is not asked), unknown, expired or unreadable. */
  async get(id: string): Promise<ActionContext | null> {
    if (!isContextId(id)) return null;
    const stored = await this.#store.get(keyOf(id));
    if (stored === null) return null;
    let json: unknown;
    try {
      json = JSON.parse(stored);
    } catch {
      return null;
    }
    const parsed = storedContext.safeParse(json);
    if (!parsed.success || parsed.data.id !== id) return null;
    // The store's TTL already removes it; this also holds for a store whose clock runs behind.
    if (Date.parse(parsed.data.expiresAt) <= Date.now()) return null;
    return parsed.data;
  }

  /**
   * Slides the context's lifetime while bytes move (a part stored, a zip streaming), so a transfer that runs past
   * the lifetime is not cut by it; status polls do not call this, so an idle open page still expires. Written at
   * most every KEEP_ALIVE_STEP_SECONDS (or a tenth of the lifetime), not on every part.
   */
  async keepAlive(context: ActionContext): Promise<ActionContext> {
    const now = Date.now();
    const step = Math.min(KEEP_ALIVE_STEP_SECONDS, this.#ttlSeconds / 10) * 1000;
    if (Date.parse(context.expiresAt) - now > this.#ttlSeconds * 1000 - step) return context;
    const kept: ActionContext = { ...context, expiresAt: new Date(now + this.#ttlSeconds * 1000).toISOString() };
    // Only while it is still there: a launch discarded meanwhile stays discarded.
    await this.#store.setIfPresent(keyOf(context.id), JSON.stringify(kept), this.#ttlSeconds, ownedBy(context));
    return kept;
  }

  async delete(id: string): Promise<void> {
    if (!isContextId(id)) return;
    await this.#store.delete(keyOf(id));
  }
}

function keyOf(id: string): string {
  return `ami-context:${id}`;
}

/** A launch is kept for its user: a full memory store evicts the launches of whoever holds the most first. */
function ownedBy(context: ActionContext): WriteOptions {
  return { owner: context.user.login };
}

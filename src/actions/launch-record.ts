import { createHash } from 'node:crypto';
import type { KeyValueStore } from '../store/key-value-store.ts';
import type { EntityId } from '../trackers/tracker.ts';

// What a user did with an action — files uploaded, attached or queued, Versions submitted, zips downloaded — kept
// per user and action for a while, so that a reloaded page and the user's later launches of the same action can
// show it (with links) after the page that did it is gone. One hash in the store per user and action; each entry
// is one field, so concurrent writers (parts of one page, several instances) never overwrite each other.

export type RecordKind = 'file' | 'version' | 'zip';

/**
 * file: queued → sending → done | partly | failed | stopped.  version: awaiting-movie → submitted | removed.
 * zip: prepared → downloaded | failed.
 */
export type RecordState = 'queued' | 'sending' | 'done' | 'partly' | 'failed' | 'stopped' | 'awaiting-movie' | 'submitted' | 'removed' | 'prepared' | 'downloaded';

export interface RecordTarget {
  type: string;
  /** The seam's id (a record written before ids were strings holds a number: shown the same). */
  id: EntityId;
  /** Known when written (a Version's entity); otherwise looked up when shown, as the user. */
  name?: string;
  ok?: boolean;
  message?: string;
}

export interface RecordEntry {
  /** Unique within the user's record of the action: an upload id, `version-<id>`, `zip-<id>`, a queued key. */
  key: string;
  kind: RecordKind;
  state: RecordState;
  /** The file, the Version or the zip. */
  name: string;
  size: number | null;
  /** Where it went (or what a zip held): at most MAX_TARGETS, the rest counted in moreTargets. */
  targets: RecordTarget[];
  moreTargets: number;
  /** A Version's own page at the site. */
  siteUrl?: string;
  note?: string;
  /** ISO 8601: when it was first recorded, and last changed. */
  at: string;
  updatedAt: string;
  /** Which launch did it: a digest of the launch's id (the id itself opens the launch, so it is never kept here). */
  launch: string;
}

export type NewRecordEntry = Pick<RecordEntry, 'key' | 'kind' | 'state' | 'name' | 'size' | 'targets'> & Partial<Pick<RecordEntry, 'siteUrl' | 'note' | 'moreTargets'>>;

/** Whose record, and which launch: an action context, or what a Version remembers of the launch that made it. */
export interface RecordOwner {
  id: string;
  action: string;
  user: { login: string };
}

export interface LaunchRecordsOptions {
  store: KeyValueStore;
  /** How long a user's record of an action is kept after its last change. */
  ttlSeconds: number;
  /** Entries kept per user and action; past it the oldest go. */
  maxEntries?: number;
}

const MAX_TARGETS = 20;
const MAX_TEXT = 300;

export class LaunchRecords {
  readonly #options: Required<LaunchRecordsOptions>;

  constructor(options: LaunchRecordsOptions) {
    this.#options = { maxEntries: 100, ...options };
  }

  /** Records an entry, or updates the one of the same key (keeping when it began). Never throws: a record is not worth a failed transfer. */
  async note(context: RecordOwner, entry: NewRecordEntry): Promise<void> {
    await this.#change(context, entry.key, () => entry);
  }

  /** Updates an entry only if it is recorded (a late answer must not bring back one that was pruned). */
  async update(context: RecordOwner, key: string, change: (entry: RecordEntry) => NewRecordEntry): Promise<void> {
    await this.#change(context, key, (previous) => (previous ? change(previous) : null));
  }

  /** One read of the record, then the entry `change` gives (none: nothing is written). */
  async #change(context: RecordOwner, field: string, change: (previous: RecordEntry | null) => NewRecordEntry | null): Promise<void> {
    try {
      const key = recordKey(context);
      const entries = await this.#all(key);
      const previous = entries.find((candidate) => candidate.key === field) ?? null;
      const entry = change(previous);
      if (entry === null) return;
      const now = new Date().toISOString();
      const stored: RecordEntry = {
        ...bounded(entry),
        at: previous?.at ?? now,
        updatedAt: now,
        // An entry keeps the launch that began it (a Version removed by the sweep after its launch expired).
        launch: previous?.launch ?? launchMark(context.id),
      };
      await this.#options.store.hashSet(key, entry.key, JSON.stringify(stored), this.#options.ttlSeconds, { owner: context.user.login });
      // A new entry may take the record past its bound: read again (other writers add too) and drop the oldest.
      if (!previous && entries.length + 1 >= this.#options.maxEntries) await this.#prune(key);
    } catch {
      // The store is down or full: the transfer itself reports what matters.
    }
  }

  async drop(context: Omit<RecordOwner, 'id'>, key: string): Promise<void> {
    await this.#options.store.hashDelete(recordKey(context), key).catch(() => undefined);
  }

  /** The user's record of this action, newest first: this launch's entries, and the earlier launches'. */
  async list(context: RecordOwner): Promise<{ thisLaunch: RecordEntry[]; earlier: RecordEntry[] }> {
    const entries = (await this.#all(recordKey(context))).sort((a, b) => b.at.localeCompare(a.at));
    const mark = launchMark(context.id);
    return { thisLaunch: entries.filter((entry) => entry.launch === mark), earlier: entries.filter((entry) => entry.launch !== mark) };
  }

  async #all(key: string): Promise<RecordEntry[]> {
    const fields = await this.#options.store.hashGetAll(key);
    const entries: RecordEntry[] = [];
    for (const value of Object.values(fields)) {
      try {
        entries.push(JSON.parse(value) as RecordEntry);
      } catch {
        // Not ours to show.
      }
    }
    return entries;
  }

  async #prune(key: string): Promise<void> {
    const entries = await this.#all(key);
    if (entries.length <= this.#options.maxEntries) return;
    entries.sort((a, b) => a.at.localeCompare(b.at));
    for (const entry of entries.slice(0, entries.length - this.#options.maxEntries)) await this.#options.store.hashDelete(key, entry.key);
  }
}

/** Targets beyond MAX_TARGETS counted, not kept; texts cut: every entry has a bounded size. */
function bounded(entry: NewRecordEntry): NewRecordEntry & { moreTargets: number } {
  const cut = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);
  const kept = entry.targets.slice(0, MAX_TARGETS).map((target) => ({
    ...target,
    ...(target.name === undefined ? {} : { name: cut(target.name) }),
    ...(target.message === undefined ? {} : { message: cut(target.message) }),
  }));
  return {
    ...entry,
    name: cut(entry.name),
    targets: kept,
    moreTargets: (entry.moreTargets ?? 0) + Math.max(0, entry.targets.length - MAX_TARGETS),
    ...(entry.note === undefined ? {} : { note: cut(entry.note) }),
  };
}

function recordKey(context: Omit<RecordOwner, 'id'>): string {
  return `launch-record:${encodeURIComponent(context.user.login)}:${context.action}`;
}

function launchMark(contextId: string): string {
  return createHash('sha256').update(contextId).digest('base64url').slice(0, 16);
}

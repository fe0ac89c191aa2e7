import type { KeyValueStore, WriteOptions } from './key-value-store.ts';
import { OwnerPools, type OwnerPool } from './owner-pools.ts';
import { checkTtlSeconds } from './ttl.ts';

// The in-process twin of the Redis store, for a single instance (the default without REDIS_URL). Entries expire
// like Redis keys: an expired key reads as absent at once, and a periodic sweep frees the memory of keys nobody
// reads again. It is bounded by entry count and by bytes, so a flood cannot grow the process without limit. What
// gives way is chosen per user (owner-pools.ts): the least recently used entry of the owner holding the most bytes,
// so one user flooding the store evicts their own oldest launches and uploads, never another user's. Entries
// written without an owner (state shared by everyone) form one more pool, least recently used first within it.
// Keys under `protectedPrefixes` (the AMI replay guard) are never dropped before their time: evicting one would
// let a refused request be replayed. They are few and short-lived (one per accepted launch, for two minutes), so
// they cannot fill the store themselves.

export interface MemoryKeyValueStoreOptions {
  /** Most entries kept; past it the heaviest owner's least recently used go first. Default 100 000. */
  maxEntries?: number;
  /** Most bytes kept (keys and values, counted as UTF-16); past it as past maxEntries. Default 256 MiB. */
  maxBytes?: number;
  /** Keys starting with one of these are never evicted, only expired. Default: the replay guard's. */
  protectedPrefixes?: readonly string[];
  /** The clock, in milliseconds since the epoch like Date.now (tests move it by hand). */
  now?: () => number;
}

interface Entry {
  /** A string, or a hash's fields. */
  value: string | Map<string, string>;
  expiresAt: number;
  /** What it holds, as counted against maxBytes. */
  bytes: number;
  /** Its owner's pool, where it waits its turn to be evicted; null for a protected key, which never is. */
  pool: OwnerPool | null;
}

const sweepIntervalMs = 60_000;

export class MemoryKeyValueStore implements KeyValueStore {
  readonly #entries = new Map<string, Entry>();
  /** The evictable keys by owner, each owner's in use order. */
  readonly #pools = new OwnerPools();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #protected: readonly string[];
  #bytes = 0;
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(options: MemoryKeyValueStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a whole number, at least 1 (got ${maxEntries})`);
    }
    this.#maxEntries = maxEntries;
    this.#maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    this.#protected = options.protectedPrefixes ?? ['ami-replay:'];
    this.#now = options.now ?? Date.now;
    // unref: the sweep alone must never keep the process alive.
    this.#sweeper = setInterval(() => this.sweepExpired(), sweepIntervalMs).unref();
  }

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.#entries.size;
  }

  /** Bytes held, as counted against maxBytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes held by one owner's evictable entries (no owner: the shared entries'). */
  bytesOwnedBy(owner?: string): number {
    return this.#pools.bytesOf(owner);
  }

  async get(key: string): Promise<string | null> {
    this.#checkOpen();
    const entry = this.#liveEntry(key);
    if (!entry) return null;
    if (typeof entry.value !== 'string') throw wrongType(key);
    this.#touch(key, entry);
    return entry.value;
  }

  async set(key: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<void> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    this.#store(key, value, ttlSeconds, options?.owner);
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<boolean> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    // Atomic without a lock: nothing awaits between the check and the write, and JavaScript runs one task at a time.
    if (this.#liveEntry(key)) return false;
    this.#store(key, value, ttlSeconds, options?.owner);
    return true;
  }

  async setIfPresent(key: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<boolean> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    if (!this.#liveEntry(key)) return false;
    this.#store(key, value, ttlSeconds, options?.owner);
    return true;
  }

  async increment(key: string, ttlSeconds: number, options?: WriteOptions, by = 1): Promise<number> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    if (!Number.isSafeInteger(by)) throw new TypeError('increment: by must be a whole number');
    const entry = this.#liveEntry(key);
    if (entry && typeof entry.value !== 'string') throw wrongType(key);
    if (!entry) {
      this.#store(key, String(by), ttlSeconds, options?.owner);
      return by;
    }
    // Its expiry and owner stay: a window's counter ends when the window does. Only its digits may change.
    const count = Number(entry.value) + by;
    const value = String(count);
    this.#resize(entry, 2 * (value.length - (entry.value as string).length));
    entry.value = value;
    this.#touch(key, entry);
    return count;
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    this.#drop(key);
  }

  async hashSet(key: string, field: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<void> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    const entry = this.#liveEntry(key);
    if (entry && typeof entry.value === 'string') throw wrongType(key);
    const fields = entry ? (entry.value as Map<string, string>) : new Map<string, string>();
    // Counted by difference: a hash of 10,000 parts' ETags is not summed again on every part.
    const previous = fields.get(field);
    const bytes = (entry?.bytes ?? 2 * key.length) + 2 * (value.length - (previous === undefined ? -field.length : previous.length));
    fields.set(field, value);
    this.#store(key, fields, ttlSeconds, options?.owner, bytes);
  }

  async hashDelete(key: string, field: string): Promise<void> {
    this.#checkOpen();
    const entry = this.#liveEntry(key);
    if (!entry) return;
    if (typeof entry.value === 'string') throw wrongType(key);
    const previous = entry.value.get(field);
    if (previous === undefined) return;
    entry.value.delete(field);
    this.#resize(entry, -2 * (field.length + previous.length));
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    this.#checkOpen();
    const entry = this.#liveEntry(key);
    if (!entry) return {};
    if (typeof entry.value === 'string') throw wrongType(key);
    this.#touch(key, entry);
    return Object.fromEntries(entry.value);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#entries.clear();
    this.#pools.clear();
    this.#bytes = 0;
  }

  /** Drops every expired entry; returns how many. Runs on a timer; public so tests need not wait for it. */
  sweepExpired(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#drop(key);
        dropped += 1;
      }
    }
    return dropped;
  }

  #liveEntry(key: string): Entry | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= this.#now()) {
      this.#drop(key);
      return null;
    }
    return entry;
  }

  /** Writes the entry under `owner` (none: shared), first evicting what must go to make room for it. */
  #store(key: string, value: Entry['value'], ttlSeconds: number, owner: string | undefined, bytes = 2 * (key.length + (value as string).length)): void {
    // Dropped before making room, so the key being written is never its own victim.
    this.#drop(key);
    while (this.#entries.size + 1 > this.#maxEntries || this.#bytes + bytes > this.#maxBytes) {
      const victim = this.#pools.nextVictim();
      // Only protected keys left: the entry is kept all the same (they are few and expire soon).
      if (victim === undefined) break;
      this.#drop(victim);
    }
    const pool = this.#protected.some((prefix) => key.startsWith(prefix)) ? null : this.#pools.add(key, owner, bytes);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlSeconds * 1000, bytes, pool });
    this.#bytes += bytes;
  }

  #touch(key: string, entry: Entry): void {
    if (entry.pool) this.#pools.touch(entry.pool, key);
  }

  #resize(entry: Entry, delta: number): void {
    entry.bytes += delta;
    this.#bytes += delta;
    if (entry.pool) this.#pools.resize(entry.pool, delta);
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    if (entry.pool) this.#pools.remove(entry.pool, key, entry.bytes);
  }

  #checkOpen(): void {
    // Same as the Redis twin: a closed store refuses work instead of quietly answering from nothing.
    if (this.#closed) throw new Error('The key-value store is closed');
  }
}

/** As Redis answers a string command on a hash, or the reverse. */
function wrongType(key: string): Error {
  return new Error(`WRONGTYPE: ${key} holds another kind of value`);
}

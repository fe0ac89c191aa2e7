import type { KeyValueStore } from './key-value-store.ts';
import { checkTtlSeconds } from './ttl.ts';

// The in-process twin of the Redis store, for a single instance (the default without REDIS_URL). Entries expire
// like Redis keys: an expired key reads as absent at once, and a periodic sweep frees the memory of keys nobody
// reads again. It is bounded by entry count, dropping the least recently used entries first, so a flood of
// launches cannot grow the process without limit.

export interface MemoryKeyValueStoreOptions {
  /** Most entries kept; past it the least recently used go first. Default 100 000. */
  maxEntries?: number;
  /** The clock, in milliseconds since the epoch like Date.now (tests move it by hand). */
  now?: () => number;
}

interface Entry {
  /** A string, or a hash's fields. */
  value: string | Map<string, string>;
  expiresAt: number;
}

const sweepIntervalMs = 60_000;

export class MemoryKeyValueStore implements KeyValueStore {
  // A Map iterates in insertion order; every read or write re-inserts its key, so the first key is always the
  // least recently used one.
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(options: MemoryKeyValueStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a whole number, at least 1 (got ${maxEntries})`);
    }
    this.#maxEntries = maxEntries;
    this.#now = options.now ?? Date.now;
    // unref: the sweep alone must never keep the process alive.
    this.#sweeper = setInterval(() => this.sweepExpired(), sweepIntervalMs).unref();
  }

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.#entries.size;
  }

  async get(key: string): Promise<string | null> {
    this.#checkOpen();
    const entry = this.#liveEntry(key);
    if (!entry) return null;
    if (typeof entry.value !== 'string') throw wrongType(key);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    this.#store(key, value, ttlSeconds);
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    // Atomic without a lock: nothing awaits between the check and the write, and JavaScript runs one task at a time.
    if (this.#liveEntry(key)) return false;
    this.#store(key, value, ttlSeconds);
    return true;
  }

  async setIfPresent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    if (!this.#liveEntry(key)) return false;
    this.#store(key, value, ttlSeconds);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    this.#entries.delete(key);
  }

  async hashSet(key: string, field: string, value: string, ttlSeconds: number): Promise<void> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    const entry = this.#liveEntry(key);
    if (entry && typeof entry.value === 'string') throw wrongType(key);
    const fields = entry ? (entry.value as Map<string, string>) : new Map<string, string>();
    fields.set(field, value);
    this.#store(key, fields, ttlSeconds);
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    this.#checkOpen();
    const entry = this.#liveEntry(key);
    if (!entry) return {};
    if (typeof entry.value === 'string') throw wrongType(key);
    return Object.fromEntries(entry.value);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#entries.clear();
  }

  /** Drops every expired entry; returns how many. Runs on a timer; public so tests need not wait for it. */
  sweepExpired(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(key);
        dropped += 1;
      }
    }
    return dropped;
  }

  #liveEntry(key: string): Entry | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return null;
    }
    return entry;
  }

  #store(key: string, value: Entry['value'], ttlSeconds: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlSeconds * 1000 });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
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

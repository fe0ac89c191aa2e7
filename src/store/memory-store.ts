import type { KeyValueStore } from './key-value-store.ts';
import { checkTtlSeconds } from './ttl.ts';

// The in-process twin of the Redis store, for a single instance (the default without REDIS_URL). Entries expire
// like Redis keys: an expired key reads as absent at once, and a periodic sweep frees the memory of keys nobody
// reads again. It is bounded by entry count and by bytes, dropping the least recently used entries first, so a
// flood cannot grow the process without limit. Keys under `protectedPrefixes` (the AMI replay guard) are never
// dropped before their time: evicting one would let a refused request be replayed. They are few and short-lived
// (one per accepted launch, for two minutes), so they cannot fill the store themselves.

export interface MemoryKeyValueStoreOptions {
  /** Most entries kept; past it the least recently used go first. Default 100 000. */
  maxEntries?: number;
  /** Most bytes kept (keys and values, counted as UTF-16); past it the least recently used go first. Default 256 MiB. */
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
}

const sweepIntervalMs = 60_000;

export class MemoryKeyValueStore implements KeyValueStore {
  // A Map iterates in insertion order; every read or write re-inserts its key, so the first key is always the
  // least recently used one.
  readonly #entries = new Map<string, Entry>();
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

  async increment(key: string, ttlSeconds: number): Promise<number> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    const entry = this.#liveEntry(key);
    if (entry && typeof entry.value !== 'string') throw wrongType(key);
    const count = entry ? Number(entry.value) + 1 : 1;
    if (!entry) {
      this.#store(key, String(count), ttlSeconds);
    } else {
      // Its expiry stays: a window's counter ends when the window does.
      entry.value = String(count);
    }
    return count;
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    this.#drop(key);
  }

  async hashSet(key: string, field: string, value: string, ttlSeconds: number): Promise<void> {
    this.#checkOpen();
    checkTtlSeconds(ttlSeconds);
    const entry = this.#liveEntry(key);
    if (entry && typeof entry.value === 'string') throw wrongType(key);
    const fields = entry ? (entry.value as Map<string, string>) : new Map<string, string>();
    // Counted by difference: a hash of 10,000 parts' ETags is not summed again on every part.
    const previous = fields.get(field);
    const bytes = (entry?.bytes ?? 2 * key.length) + 2 * (value.length - (previous === undefined ? -field.length : previous.length));
    fields.set(field, value);
    this.#store(key, fields, ttlSeconds, bytes);
  }

  async hashDelete(key: string, field: string): Promise<void> {
    this.#checkOpen();
    const entry = this.#liveEntry(key);
    if (!entry) return;
    if (typeof entry.value === 'string') throw wrongType(key);
    const previous = entry.value.get(field);
    if (previous === undefined) return;
    entry.value.delete(field);
    entry.bytes -= 2 * (field.length + previous.length);
    this.#bytes -= 2 * (field.length + previous.length);
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

  #store(key: string, value: Entry['value'], ttlSeconds: number, bytes = 2 * (key.length + (value as string).length)): void {
    this.#drop(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlSeconds * 1000, bytes });
    this.#bytes += bytes;
    if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) return;
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
      if (oldest === key || this.#protected.some((prefix) => oldest.startsWith(prefix))) continue;
      this.#drop(oldest);
    }
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
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

// The small key-value contract that shared state is built on: action contexts, replay guards, upload progress.
// Two twins implement it — in-process memory (bounded, with TTLs) and Redis (shared by every instance) — and one
// contract test runs against both, so the service behaves the same with one process or many.

/** How an entry is written, beside its key, value and TTL. */
export interface WriteOptions {
  /**
   * The user the entry is kept for (their login), or none for state shared by everyone. The memory store, when full,
   * evicts from the owner holding the most bytes, so one user's flood cannot push out another user's launches and
   * uploads. Redis ignores it (redis-store.ts): which key a full Redis evicts is its maxmemory-policy's choice, and
   * the service wants `noeviction` (start-up warns otherwise, create-store.ts), under which Redis evicts nothing,
   * the replay guard included, and refuses writes instead. Fairness there rests on the per-user rate limit, the
   * per-launch caps and sizing maxmemory (docs/decisions/0009-fair-eviction.md).
   */
  owner?: string;
}

export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  /** Stores the value, replacing any, for ttlSeconds. Each write names the entry's owner anew (none: shared). */
  set(key: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<void>;
  /** Stores the value only if the key is absent, atomically; true when it was stored. */
  setIfAbsent(key: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<boolean>;
  /** Replaces the value only if the key is still there, atomically (never brings back what was deleted). */
  setIfPresent(key: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * Adds `by` (1 unless said; -1 gives one back) to a counter and answers its new value, atomically; a new counter
   * lives ttlSeconds (a later increment does not extend it, nor change its owner). For rate limits and caps that
   * hold across instances: each counter is a window that ends with its TTL.
   */
  increment(key: string, ttlSeconds: number, options?: WriteOptions, by?: number): Promise<number>;
  /** Sets one field of a hash and gives the whole hash ttlSeconds (and the owner): many writers can each set their own field. */
  hashSet(key: string, field: string, value: string, ttlSeconds: number, options?: WriteOptions): Promise<void>;
  /** Removes one field of a hash (nothing when absent). */
  hashDelete(key: string, field: string): Promise<void>;
  /** Every field of a hash ({} when absent or expired). */
  hashGetAll(key: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

// The small key-value contract that shared state is built on: action contexts, replay guards, upload progress.
// Two twins implement it — in-process memory (bounded, with TTLs) and Redis (shared by every instance) — and one
// contract test runs against both, so the service behaves the same with one process or many.

export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  /** Stores the value, replacing any, for ttlSeconds. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Stores the value only if the key is absent, atomically; true when it was stored. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Replaces the value only if the key is still there, atomically (never brings back what was deleted). */
  setIfPresent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * Adds 1 to a counter and answers its new value, atomically; a new counter lives ttlSeconds (a later increment
   * does not extend it). For rate limits that hold across instances.
   */
  increment(key: string, ttlSeconds: number): Promise<number>;
  /** Sets one field of a hash and gives the whole hash ttlSeconds: many writers can each set their own field. */
  hashSet(key: string, field: string, value: string, ttlSeconds: number): Promise<void>;
  /** Removes one field of a hash (nothing when absent). */
  hashDelete(key: string, field: string): Promise<void>;
  /** Every field of a hash ({} when absent or expired). */
  hashGetAll(key: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

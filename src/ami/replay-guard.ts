import type { KeyValueStore } from '../store/key-value-store.ts';

// Remembers the signatures of accepted AMI requests, so a captured request (from a proxy log, a browser history,
// a resent form) cannot be played again while its timestamp is still inside the window. The memory lives in the
// key-value store, so with Redis every instance refuses what any instance has seen.

export class ReplayGuard {
  readonly #store: KeyValueStore;

  constructor(store: KeyValueStore) {
    this.#store = store;
  }

  /** True the first time a signature is seen within ttlSeconds, false on every later use; atomic across instances. */
  async firstUse(signature: string, ttlSeconds: number): Promise<boolean> {
    return this.#store.setIfAbsent(`ami-replay:${signature}`, '1', ttlSeconds);
  }
}

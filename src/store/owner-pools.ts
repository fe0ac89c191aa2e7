// Who gives way when the in-memory store is full. Every evictable entry sits in its owner's pool (a user's login;
// entries written without one share a pool of their own, which competes like any user). The next entry to go is
// the least recently used one of the pool holding the most bytes: one user flooding the store evicts their own
// oldest entries first, and a user who holds little keeps everything until the flood has shrunk to their size.
//
// Cost per write or eviction: O(1) in the pool (a Map in use order: touch, drop and oldest are O(1)) and
// O(log owners) in a binary max-heap of pools by bytes. Nothing scans the entries.

/** The owner of what was written without one: shared state, in one pool. A login is never empty. */
const SHARED = '';

/** One owner's evictable entries, in use order (least recently used first). Opaque outside this module. */
export interface OwnerPool {
  readonly owner: string;
  /** Bytes of its entries, as counted against the store's maxBytes. */
  readonly bytes: number;
}

interface Pool extends OwnerPool {
  bytes: number;
  /** Its keys, least recently used first. */
  keys: Set<string>;
  /** Where it sits in the heap. */
  index: number;
}

export class OwnerPools {
  readonly #byOwner = new Map<string, Pool>();
  /** A binary max-heap by bytes: #heap[0] is the heaviest pool. Empty pools are never in it. */
  readonly #heap: Pool[] = [];

  /** Puts a newly written key at the most recently used end of its owner's pool (the shared one without owner). */
  add(key: string, owner: string | undefined, bytes: number): OwnerPool {
    const name = owner ?? SHARED;
    let pool = this.#byOwner.get(name);
    if (!pool) {
      pool = { owner: name, bytes: 0, keys: new Set(), index: this.#heap.length };
      this.#byOwner.set(name, pool);
      this.#heap.push(pool);
    }
    pool.keys.add(key);
    this.resize(pool, bytes);
    return pool;
  }

  /** The key was read or written: it becomes its pool's most recently used. */
  touch(handle: OwnerPool, key: string): void {
    const { keys } = handle as Pool;
    keys.delete(key);
    keys.add(key);
  }

  /** The key's entry grew or shrank by `delta` bytes (a hash field set or removed, a counter's digits). */
  resize(handle: OwnerPool, delta: number): void {
    const pool = handle as Pool;
    pool.bytes += delta;
    if (delta > 0) this.#up(pool.index);
    else if (delta < 0) this.#down(pool.index);
  }

  /** The key's entry is gone (deleted, expired, overwritten or evicted); its pool goes when emptied. */
  remove(handle: OwnerPool, key: string, bytes: number): void {
    const pool = handle as Pool;
    pool.keys.delete(key);
    if (pool.keys.size > 0) {
      this.resize(pool, -bytes);
      return;
    }
    pool.bytes = 0;
    this.#byOwner.delete(pool.owner);
    const last = this.#heap.pop()!;
    if (last !== pool) {
      this.#heap[pool.index] = last;
      last.index = pool.index;
      this.#up(last.index);
      this.#down(last.index);
    }
  }

  /** What to evict next: the least recently used key of the owner holding the most bytes; undefined when none. */
  nextVictim(): string | undefined {
    const heaviest = this.#heap[0];
    return heaviest?.keys.values().next().value;
  }

  /** Bytes held by an owner's evictable entries (undefined: the shared pool's). */
  bytesOf(owner: string | undefined): number {
    return this.#byOwner.get(owner ?? SHARED)?.bytes ?? 0;
  }

  clear(): void {
    this.#byOwner.clear();
    this.#heap.length = 0;
  }

  #up(index: number): void {
    const heap = this.#heap;
    const pool = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.bytes >= pool.bytes) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = pool;
    pool.index = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const pool = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.bytes > heap[left]!.bytes ? right : left;
      if (heap[child]!.bytes <= pool.bytes) break;
      heap[index] = heap[child]!;
      heap[index]!.index = index;
      index = child;
    }
    heap[index] = pool;
    pool.index = index;
  }
}

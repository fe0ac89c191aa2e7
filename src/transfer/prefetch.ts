import type { Readable } from 'node:stream';

// Sources opened a few ahead of the one being read: while the writer streams entry i, the requests for the next
// entries are already under way, so their latency (signing, connecting, first byte) hides behind the current
// transfer. Each opened source holds at most its first chunk until it is read (backpressure does the rest), so
// memory stays at about `ahead` chunks.

export interface Prefetcher<T> {
  /** The source of `item`, opening it and the next `ahead` items if they are not open yet. */
  open(item: T): Readable;
  /** Destroys every source opened ahead but not taken (the download stopped). */
  close(): void;
}

/**
 * With a byte budget, fewer are opened ahead when they are big: past the first one ahead, no more once the
 * sources open ahead add up to `bytes` (many small files want many requests in flight to hide each one's latency;
 * a few big ones are limited by bandwidth, and one ahead is enough to hide the next one's start).
 */
export interface PrefetchBudget<T> {
  bytes: number;
  sizeOf(item: T): number;
}

export function prefetching<T>(items: readonly T[], openSource: (item: T) => Readable, ahead: number, budget?: PrefetchBudget<T>): Prefetcher<T> {
  const opened = new Map<number, Readable>();
  const indexOf = new Map(items.map((item, index) => [item, index]));
  const openAt = (index: number): void => {
    const item = items[index];
    if (item === undefined || opened.has(index)) return;
    const source = openSource(item);
    // Errors surface when the writer reads it; until then none may go unhandled.
    source.on('error', () => undefined);
    // Ask for the first chunk now: this starts the request without reading further.
    source.read(0);
    opened.set(index, source);
  };
  return {
    open(item) {
      const index = indexOf.get(item);
      if (index === undefined) throw new Error('prefetching: an item that was not planned');
      openAt(index);
      let aheadBytes = 0;
      for (let next = index + 1; next <= index + ahead && next < items.length; next++) {
        if (budget && next > index + 1 && aheadBytes >= budget.bytes) break;
        openAt(next);
        if (budget) aheadBytes += budget.sizeOf(items[next]!);
      }
      const source = opened.get(index)!;
      opened.delete(index);
      return source;
    },
    close() {
      for (const source of opened.values()) source.destroy();
      opened.clear();
    },
  };
}

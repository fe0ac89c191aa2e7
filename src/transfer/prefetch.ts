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

export function prefetching<T>(items: readonly T[], openSource: (item: T) => Readable, ahead: number): Prefetcher<T> {
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
      for (let next = index; next <= index + ahead; next++) openAt(next);
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

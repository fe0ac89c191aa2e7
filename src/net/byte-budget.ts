// Bytes the whole process may hold at once for request bodies it buffers (the plain form's held parts, launch
// forms). Each request is bounded on its own, but hundreds at once would not be: past the budget a request waits
// for room before reading more, so its client is slowed down (backpressure) instead of the process growing.

export class ByteBudget {
  readonly #total: number;
  #free: number;
  readonly #waiting: { bytes: number; resolve: () => void }[] = [];

  constructor(total: number) {
    if (!Number.isSafeInteger(total) || total < 1) throw new RangeError(`a byte budget must be a whole number from 1, got ${total}`);
    this.#total = total;
    this.#free = total;
  }

  /** Bytes held now. */
  get held(): number {
    return this.#total - this.#free;
  }

  /** Waits until `bytes` are free (more than the whole budget is granted once it is all free), then holds them. */
  async acquire(bytes: number): Promise<void> {
    const wanted = Math.min(bytes, this.#total);
    if (this.#waiting.length === 0 && this.#free >= wanted) {
      this.#free -= wanted;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push({ bytes: wanted, resolve }));
  }

  /** Holds `bytes` if they are free now, without waiting (for readers that must not hold part and wait for more). */
  tryAcquire(bytes: number): boolean {
    if (this.#waiting.length > 0 || this.#free < bytes) return false;
    this.#free -= bytes;
    return true;
  }

  release(bytes: number): void {
    this.#free = Math.min(this.#total, this.#free + Math.min(bytes, this.#total));
    // In arrival order: a big request is not starved by small ones passing it.
    while (this.#waiting.length > 0 && this.#free >= this.#waiting[0]!.bytes) {
      const next = this.#waiting.shift()!;
      this.#free -= next.bytes;
      next.resolve();
    }
  }
}

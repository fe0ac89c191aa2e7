// At most `limit` calls running at once; the rest wait their turn in arrival order. For requests to a shared
// server (the tracking site's API serves the whole studio), so one user's zip of 2,000 files cannot flood it.

export class RequestLimit {
  readonly #limit: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a request limit must be a whole number from 1, got ${limit}`);
    this.#limit = limit;
  }

  /** Calls at once right now (for tests and metrics). */
  get running(): number {
    return this.#running;
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running += 1;
    try {
      return await call();
    } finally {
      // The slot passes straight to the next in line, or is freed.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}

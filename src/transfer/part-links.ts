// Part links asked of the tracker ahead of the parts: while part n streams, the links of the next few parts are
// already on their way, so a part's bytes do not wait for a round trip to the site before they can flow. Each
// link is used once (a part sent again gets a fresh one), and one asked more than `maxAgeMs` ago is asked again:
// presigned links expire and the site does not say when. Links live in this process only; another instance simply
// asks for its own.

export interface PartLinksOptions {
  /** A link asked longer ago than this is asked again. */
  maxAgeMs: number;
}

interface Asked<Link> {
  link: Promise<Link>;
  at: number;
}

export class PartLinks<Link> {
  readonly #options: PartLinksOptions;
  readonly #asked = new Map<string, Asked<Link>>();

  constructor(options: PartLinksOptions) {
    this.#options = options;
  }

  /** The link asked ahead for `key` if there is a fresh one that did not fail, else one asked now. */
  async take(key: string, ask: () => Promise<Link>): Promise<Link> {
    const asked = this.#asked.get(key);
    this.#asked.delete(key);
    if (asked && Date.now() - asked.at < this.#options.maxAgeMs) {
      try {
        return await asked.link;
      } catch {
        // Asked ahead and refused (a transient site error, say): ask again now, as if never asked.
      }
    }
    return ask();
  }

  /** Starts asking for the links not asked yet, each `[key, ask]` (their parts come next). */
  askAhead(asks: Iterable<readonly [key: string, ask: () => Promise<Link>]>): void {
    this.#forgetExpired();
    for (const [key, ask] of asks) {
      if (this.#asked.has(key)) continue;
      const link = ask();
      link.catch(() => undefined); // a failure is met again, and handled, by take
      this.#asked.set(key, { link, at: Date.now() });
    }
  }

  /** Drops the links of keys starting with `prefix` (an upload that completed or was cancelled). */
  forget(prefix: string): void {
    for (const key of this.#asked.keys()) if (key.startsWith(prefix)) this.#asked.delete(key);
  }

  #forgetExpired(): void {
    const now = Date.now();
    for (const [key, asked] of this.#asked) if (now - asked.at >= this.#options.maxAgeMs) this.#asked.delete(key);
  }
}

import type { RequestHandler } from 'express';
import { isContextId, type ContextStore } from '../ami/context-store.ts';
import type { KeyValueStore } from '../store/key-value-store.ts';
import { HttpError } from './errors.ts';

// Requests per user per minute, counted in the key-value store so the limit holds across instances (with Redis).
// A fixed window: simple, one counter per user per minute, and generous enough that a page never meets it (a page
// sends UPLOAD_PARALLEL_PARTS parts at once, each of 8 MiB or more, and polls once a second: 3,000 a minute is
// 400 MB/s of parts, more than one service instance relays). What it stops is one user flooding the service with
// cheap requests. Answered 429 with Retry-After; the page waits that long without counting it as a failure.

export interface RateLimitOptions {
  store: KeyValueStore;
  contexts: ContextStore;
  perMinute: number;
}

const WINDOW_SECONDS = 60;

/** Mounted on /ami/:action/:contextId: every request under a launch counts against its user. */
export function limitPerUser(options: RateLimitOptions): RequestHandler {
  return async (req, res, next) => {
    const id = String(req.params['contextId']);
    // An unknown launch is answered 410 by its route; nothing to count it against.
    const context = isContextId(id) ? await options.contexts.get(id) : null;
    if (context === null) {
      next();
      return;
    }
    const now = Date.now();
    const window = Math.floor(now / (WINDOW_SECONDS * 1000));
    const count = await options.store.increment(`rate:${context.user.login}:${window}`, WINDOW_SECONDS + 1, { owner: context.user.login });
    if (count > options.perMinute) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * WINDOW_SECONDS * 1000 - now) / 1000));
      res.set('Retry-After', String(retryAfter));
      next(
        new HttpError(429, 'rate_limited', `Too many requests from ${context.user.login} this minute; the page carries on by itself in ${retryAfter} s.`, {
          hint: 'If a script sends these, make it wait as long as Retry-After says.',
        }),
      );
      return;
    }
    next();
  };
}

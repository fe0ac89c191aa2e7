// When and how long to wait before trying a request again: exponential backoff with full jitter (so many
// clients that failed together do not retry together), a server's Retry-After honoured within a cap, and a
// bounded number of attempts.

import { abortableSleep } from '../shared/abortable-sleep.ts';

// Also for callers that wait between attempts of their own (downloads).
export { abortableSleep };

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Backoff base: attempt n waits a random time up to base × 2^(n-1), capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 10_000 };

/** Thrown (or returned) by an attempt to say whether trying again could help, and when. */
export interface RetryHint {
  retryable: boolean;
  /** A wait the server asked for (Retry-After), in ms. */
  retryAfterMs?: number;
}

export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

/** Parses Retry-After (seconds or an HTTP date) into ms from now; undefined when absent or malformed. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface RetryOptions {
  policy?: RetryPolicy;
  /** Classifies a failure; anything it calls not retryable is thrown at once. */
  classify(error: unknown): RetryHint;
  /** Called before each wait, e.g. to log or count retries. */
  onRetry?(error: unknown, attempt: number, delayMs: number): void;
  signal?: AbortSignal;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Runs `attempt` until it succeeds, a failure is not retryable, or the attempts are used up. */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const policy = options.policy ?? defaultRetryPolicy;
  const sleep = options.sleep ?? abortableSleep;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const hint = options.classify(error);
      if (!hint.retryable || n >= policy.attempts || options.signal?.aborted) throw error;
      const delay = Math.min(policy.maxDelayMs, Math.max(hint.retryAfterMs ?? 0, backoffDelay(policy, n)));
      options.onRetry?.(error, n, delay);
      await sleep(delay, options.signal);
    }
  }
}

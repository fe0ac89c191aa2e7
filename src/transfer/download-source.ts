import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { countRetry, countStorageRefusal, transferBytes } from '../net/metrics.ts';
import { isNetworkError } from '../net/network-errors.ts';
import { abortableSleep, backoffDelay, defaultRetryPolicy, type RetryPolicy } from '../net/retry-policy.ts';

// One file's bytes from short-lived signed URLs, as a stream of exactly `size` bytes: a connection that drops
// mid-body is resumed with Range from the byte where it stopped, an expired URL (403) is signed afresh, other
// transient failures are retried with backoff, and a source that cannot be completed fails the stream — so a
// reader (the zip writer) never mistakes part of a file for all of it.

export interface SignedLocation {
  url: string;
  /** Headers the location needs (never the site's Bearer token for storage). */
  headers?: Record<string, string>;
}

export interface DownloadSourceOptions {
  /** Asks the tracker for a fresh signed location (called at start and after an expiry). */
  locate(): Promise<SignedLocation>;
  /** The file's size as the tracker states it; the stream ends with exactly this many bytes or fails. */
  size: number;
  retry?: RetryPolicy;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** Called for each resume or re-sign, e.g. to count retries in metrics. */
  onRetry?(reason: string, received: number): void;
}

export class DownloadError extends Error {
  readonly status: number | null;
  constructor(message: string, status: number | null = null, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DownloadError';
    this.status = status;
  }
}

export function openDownload(options: DownloadSourceOptions): Readable {
  return new SignedDownload(options);
}

/**
 * The chunks of each response body are passed on as they come ('data' events, the body paused while this stream
 * is full): reading bodies through async iterators would cost promises and joined buffers on every chunk.
 */
class SignedDownload extends Readable {
  readonly #options: DownloadSourceOptions;
  #body: Readable | null = null;
  #started = false;
  /** Bytes pushed so far: where a resumed request starts. */
  #received = 0;
  /** Failed attempts since bytes last arrived. */
  #failures = 0;

  constructor(options: DownloadSourceOptions) {
    // One chunk held while nobody reads (a source opened ahead): the body's own buffer holds the rest.
    super({ highWaterMark: 1 });
    this.#options = options;
  }

  override _read(): void {
    if (this.#body !== null) {
      this.#body.resume();
    } else if (!this.#started) {
      this.#started = true;
      this.#fetch().then(
        () => this.push(null),
        (error: unknown) => this.destroy(error instanceof Error ? error : new Error(String(error))),
      );
    }
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // Destroyed while a body streams (the reader stopped): the body's failure ends the fetch. A request still
    // waiting for its answer is let go when the answer comes (see #fetch); the download's own signal aborts it.
    this.#body?.destroy(error ?? new Error('the download was closed'));
    this.#body = null;
    done(error);
  }

  /** Every byte of the file, pushed as it comes; resumes, re-signs and retries as the policy allows. */
  async #fetch(): Promise<void> {
    const options = this.#options;
    const policy = options.retry ?? defaultRetryPolicy;
    let location = await options.locate();
    while (this.#received < options.size || (options.size === 0 && this.#received === 0)) {
      const received = this.#received;
      let reason: string;
      try {
        const response = await request(location.url, {
          method: 'GET',
          headers: { ...location.headers, ...(received > 0 ? { range: `bytes=${received}-` } : {}) },
          ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        });
        if (this.destroyed) {
          response.body.destroy();
          return;
        }
        const { statusCode } = response;
        if (statusCode === 403) {
          await response.body.dump();
          reason = 'expired';
          countStorageRefusal('get', 'HTTP403');
          // An expired or revoked signature: sign afresh without counting it as a failure of the source.
          location = await options.locate();
          countRetry('storage_get', reason);
          options.onRetry?.(reason, received);
          this.#failures += 1;
          if (this.#failures >= policy.attempts) throw new DownloadError(`storage keeps refusing the signed URL (403)`, 403);
          continue;
        }
        if (received > 0 ? statusCode !== 206 : statusCode !== 200) {
          await response.body.dump();
          countStorageRefusal('get', `HTTP${statusCode}`);
          if (statusCode >= 500 || statusCode === 429) throw new TransientStatus(statusCode);
          throw new DownloadError(`storage answered ${statusCode}${received > 0 ? ' to a Range request' : ''}`, statusCode);
        }
        if (received > 0) checkContentRange(response.headers['content-range'], received, options.size);
        await this.#passOn(response.body);
        if (this.#received < options.size) throw new ShortBody();
        if (options.size === 0) return;
      } catch (error) {
        if (error instanceof DownloadError || options.signal?.aborted || this.destroyed) throw error;
        if (!(error instanceof TransientStatus || error instanceof ShortBody || isNetworkError(error))) throw error;
        if (!(error instanceof TransientStatus)) countStorageRefusal('get', error instanceof ShortBody ? 'ShortBody' : 'Network');
        this.#failures += 1;
        if (this.#failures >= policy.attempts) throw new DownloadError(`the file could not be fetched after ${this.#failures} attempts`, null, error);
        reason = error instanceof TransientStatus ? `status ${error.status}` : 'connection dropped';
        countRetry('storage_get', reason);
        options.onRetry?.(reason, this.#received);
        await abortableSleep(backoffDelay(policy, this.#failures), options.signal);
      }
    }
  }

  /** Pushes one body's chunks; resolves when it ends, rejects when it fails. */
  #passOn(body: Readable): Promise<void> {
    const { size } = this.#options;
    this.#body = body;
    return new Promise<void>((resolve, reject) => {
      const settle = (error: unknown): void => {
        // A body given up may still report its abort: heard and ignored, never an uncaught error.
        body.off('data', onData).off('end', onEnd).off('error', settle).on('error', ignore);
        this.#body = null;
        if (error === null) {
          resolve();
        } else {
          body.destroy();
          reject(error);
        }
      };
      const onData = (chunk: Buffer): void => {
        if (this.#received + chunk.length > size) {
          settle(new DownloadError(`the file is larger than the ${size} bytes the site stated`));
          return;
        }
        this.#received += chunk.length;
        bytesDown.inc(chunk.length);
        this.#failures = 0;
        if (!this.push(chunk)) body.pause();
      };
      const onEnd = (): void => settle(null);
      body.on('data', onData).once('end', onEnd).once('error', settle);
    });
  }
}

function ignore(): void {}

const bytesDown = transferBytes.labels({ direction: 'down' });

/** A 206 must resume exactly where we stopped, or the bytes would be spliced wrong. */
function checkContentRange(header: string | string[] | undefined, from: number, size: number): void {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(header ?? ''));
  if (!match || Number(match[1]) !== from || (match[3] !== '*' && Number(match[3]) !== size)) {
    throw new DownloadError(`storage resumed at the wrong place (${String(header)}; wanted byte ${from} of ${size})`);
  }
}

class TransientStatus extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`status ${status}`);
    this.status = status;
  }
}

class ShortBody extends Error {}

import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { isNetworkError } from '../trackers/shotgrid/errors.ts';
import { abortableSleep, backoffDelay, defaultRetryPolicy, type RetryPolicy } from './retry-policy.ts';

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
  return Readable.from(downloadChunks(options), { objectMode: false, highWaterMark: 1 });
}

async function* downloadChunks(options: DownloadSourceOptions): AsyncGenerator<Buffer> {
  const policy = options.retry ?? defaultRetryPolicy;
  let received = 0;
  let location = await options.locate();
  let failures = 0;
  while (received < options.size || (options.size === 0 && received === 0)) {
    let reason: string;
    try {
      const response = await request(location.url, {
        method: 'GET',
        headers: { ...location.headers, ...(received > 0 ? { range: `bytes=${received}-` } : {}) },
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const { statusCode } = response;
      if (statusCode === 403) {
        await response.body.dump();
        reason = 'expired';
        // An expired or revoked signature: sign afresh without counting it as a failure of the source.
        location = await options.locate();
        options.onRetry?.(reason, received);
        failures += 1;
        if (failures >= policy.attempts) throw new DownloadError(`storage keeps refusing the signed URL (403)`, 403);
        continue;
      }
      if (received > 0 ? statusCode !== 206 : statusCode !== 200) {
        await response.body.dump();
        if (statusCode >= 500 || statusCode === 429) throw new TransientStatus(statusCode);
        throw new DownloadError(`storage answered ${statusCode}${received > 0 ? ' to a Range request' : ''}`, statusCode);
      }
      if (received > 0) checkContentRange(response.headers['content-range'], received, options.size);
      for await (const chunk of response.body) {
        const bytes = chunk as Buffer;
        if (received + bytes.length > options.size) throw new DownloadError(`the file is larger than the ${options.size} bytes the site stated`);
        received += bytes.length;
        failures = 0;
        yield bytes;
      }
      if (received < options.size) throw new ShortBody();
      if (options.size === 0) return;
    } catch (error) {
      if (error instanceof DownloadError || options.signal?.aborted) throw error;
      if (!(error instanceof TransientStatus || error instanceof ShortBody || isNetworkError(error))) throw error;
      failures += 1;
      if (failures >= policy.attempts) throw new DownloadError(`the file could not be fetched after ${failures} attempts`, null, error);
      reason = error instanceof TransientStatus ? `status ${error.status}` : 'connection dropped';
      options.onRetry?.(reason, received);
      await abortableSleep(backoffDelay(policy, failures), options.signal);
    }
  }
}

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

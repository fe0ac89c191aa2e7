import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { isNetworkError } from '../net/network-errors.ts';
import { countStorageRefusal, transferBytes } from '../net/metrics.ts';
import type { PartLocation } from '../trackers/tracker.ts';

// One PUT of one part (or a whole small file) to a presigned storage URL, as S3 takes it from a URL that signs
// `host` only (shared/protocol/shotgrid-rest.md, "Upload"): an exact Content-Length (never chunked), a
// Content-Type, and nothing else — no Content-MD5 or x-amz-* header (403 HeadersNotSigned), no Authorization
// (400 InvalidArgument). Integrity is checked after the fact: S3's ETag of a plain PUT is the MD5 of what it
// stored, compared with the MD5 the sender computed. Where the bucket encrypts (SSE-KMS, SSE-C: the response says
// so) the ETag is not the MD5, and the bytes are hashed on their way through instead.

export type PartBody =
  /** Bytes the caller holds: they can be sent again after a failure. */
  | { bytes: Buffer }
  /**
   * Bytes streaming through (from the browser): sent once. `md5` is the sender's digest (base64), if any;
   * `hash` makes the relay hash them on the way too (needed where the ETag is not an MD5, or no digest came).
   */
  | { stream: Readable; size: number; md5?: string; hash?: boolean };

export interface PutResult {
  /** The part's receipt for completing: storage's ETag (quoted), or a local install's answer (its JSON text). */
  etag: string;
  /** MD5 of the bytes sent, hex. */
  md5: string;
  /** Whether storage's ETag is the MD5 of what it holds (not where the bucket encrypts with KMS or SSE-C). */
  etagIsMd5: boolean;
}

export class StoragePutError extends Error {
  readonly status: number | null;
  /**
   * S3's error code (SlowDown, AccessDenied, …), or ours: ChecksumMismatch (what arrived is not what the sender
   * hashed), Unverifiable (nothing to check the ETag against), NoETag, Network.
   */
  readonly code: string;
  /** Whether sending the same bytes again may work (with a fresh URL when `expired`). */
  readonly retryable: boolean;
  readonly expired: boolean;

  constructor(message: string, details: { status: number | null; code: string; retryable: boolean; expired?: boolean; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'StoragePutError';
    this.status = details.status;
    this.code = details.code;
    this.retryable = details.retryable;
    this.expired = details.expired ?? false;
  }

  /** The bytes were damaged on the way: the sender must send them again. */
  get corrupted(): boolean {
    return this.code === 'ChecksumMismatch';
  }
}

export interface PutOptions {
  /** What storage will later serve the file as (unsigned, accepted; without it S3 says binary/octet-stream). */
  contentType?: string;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

/**
 * PUTs one part to where the tracker said (a presigned URL alone, or a local install's link on the site with the
 * headers it needs). Resolves with the part's receipt for completing: storage's ETag, or the site's answer.
 */
export async function putPart(to: string | PartLocation, body: PartBody, options: PutOptions = {}): Promise<PutResult> {
  try {
    const result = await sendPart(to, body, options);
    transferBytes.inc({ direction: 'up' }, 'bytes' in body ? body.bytes.length : body.size);
    return result;
  } catch (error) {
    if (error instanceof StoragePutError) countStorageRefusal('put', error.code);
    throw error;
  }
}

async function sendPart(to: string | PartLocation, body: PartBody, options: PutOptions): Promise<PutResult> {
  const location: PartLocation = typeof to === 'string' ? { url: to, receipt: 'etag' } : to;
  const url = location.url;
  // The site's own answer carries no MD5 of what it stored: there, our digest of the bytes is the only evidence.
  const siteTakesBytes = location.receipt === 'body';
  let size: number;
  let payload: Buffer | Readable;
  // The sender's digest, and ours once the bytes have gone (null when not hashed).
  let expected: string | null;
  let ownDigest: () => string | null;
  if ('bytes' in body) {
    const md5 = createHash('md5').update(body.bytes).digest('hex');
    size = body.bytes.length;
    payload = body.bytes;
    expected = md5;
    ownDigest = () => md5;
  } else {
    size = body.size;
    expected = body.md5 === undefined ? null : Buffer.from(body.md5, 'base64').toString('hex');
    if (body.hash || expected === null || siteTakesBytes) {
      const hash = createHash('md5');
      payload = borrowed(body.stream, hash);
      ownDigest = () => hash.digest('hex');
    } else {
      // Not hashed here: on a plain bucket the ETag proves the bytes, and MD5 costs a core's worth of CPU per byte.
      payload = borrowed(body.stream);
      ownDigest = () => null;
    }
  }
  // Headers the site signed into the link (ftrack signs Content-Type) win over ours: sending another type would be
  // refused by storage. Header names are matched without regard to case.
  const signed = Object.fromEntries(Object.entries(location.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
  const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/octet-stream', ...signed, 'content-length': String(size) };

  let statusCode: number;
  let responseHeaders: Record<string, string | string[] | undefined>;
  let text: string;
  try {
    const response = await request(url, {
      method: 'PUT',
      headers,
      body: payload,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    statusCode = response.statusCode;
    responseHeaders = response.headers;
    text = await response.body.text();
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new StoragePutError(`storage connection failed: ${error instanceof Error ? error.message : String(error)}`, {
      status: null,
      code: 'Network',
      retryable: isNetworkError(error),
      cause: error,
    });
  }
  if (siteTakesBytes) {
    if (statusCode !== 200 && statusCode !== 201) throw siteRefusal(statusCode, text);
    const own = ownDigest()!;
    if (expected !== null && own !== expected) throw mismatch(own, expected);
    return { etag: text, md5: own, etagIsMd5: false };
  }
  if (statusCode !== 200) throw storageRefusal(statusCode, text);

  const etag = String(responseHeaders.etag ?? '');
  if (etag === '') throw new StoragePutError('storage answered without an ETag', { status: 200, code: 'NoETag', retryable: true });
  const quoted = etag.startsWith('"') ? etag : `"${etag}"`;
  const encrypted = responseHeaders['x-amz-server-side-encryption'] === 'aws:kms' || responseHeaders['x-amz-server-side-encryption'] === 'aws:kms:dsse' || responseHeaders['x-amz-server-side-encryption-customer-algorithm'] !== undefined;
  const own = ownDigest();
  // The sender's digest where there is one, else ours (then hashed of necessity).
  const reference = (expected ?? own)!;
  if (own !== null && own !== reference) throw mismatch(own, reference);
  // Where the ETag is the MD5 of what storage holds, it must be the sender's; elsewhere our own digest is all
  // there is, and without it nothing proves the bytes (the part is sent again, hashed this time).
  const plain = etag.replace(/^"|"$/g, '').toLowerCase();
  const stored = !encrypted && /^[0-9a-f]{32}$/.test(plain) ? plain : null;
  if (stored !== null && stored !== reference) throw mismatch(stored, reference);
  if (stored === null && own === null) {
    throw new StoragePutError('storage’s ETag is not an MD5 and the bytes were not hashed on the way: nothing proves them', { status: 200, code: 'Unverifiable', retryable: true });
  }
  return { etag: quoted, md5: reference, etagIsMd5: stored !== null };
}

function mismatch(found: string, sent: string): StoragePutError {
  return new StoragePutError(`the bytes are not the ones the sender hashed (MD5 ${found}, sender's ${sent})`, { status: 200, code: 'ChecksumMismatch', retryable: true });
}

/** A local install's upload route refused: ShotGrid's error JSON, or a proxy's page. */
function siteRefusal(status: number, text: string): StoragePutError {
  let title = `the site answered ${status}`;
  try {
    title = (JSON.parse(text) as { errors?: { title?: string }[] }).errors?.[0]?.title ?? title;
  } catch {
    // not JSON
  }
  const retryable = status >= 500 || status === 429;
  return new StoragePutError(`the site refused the upload: ${title}`, { status, code: `HTTP${status}`, retryable, expired: status === 403 && /expired/i.test(title) });
}

function storageRefusal(status: number, xml: string): StoragePutError {
  const code = /<Code>([^<]+)<\/Code>/.exec(xml)?.[1] ?? `HTTP${status}`;
  const message = /<Message>([^<]+)<\/Message>/.exec(xml)?.[1] ?? `storage answered ${status}`;
  const expired = status === 403 && (code === 'AccessDenied' || code === 'ExpiredToken') && /expired/i.test(message);
  const retryable = status >= 500 || status === 429 || expired || code === 'RequestTimeout';
  return new StoragePutError(`storage refused the part: ${code}: ${message}`, { status, code, retryable, expired });
}

/**
 * The stream's chunks for the request body, without handing the stream itself over: a failed request destroys
 * this stand-in instead of the source, which may be the page's own request (its connection must live to receive
 * the answer that says "send this part again"). Chunks are passed on as they come ('data' events, paused while the
 * request's socket is full): reading through an async iterator would join buffered chunks into new buffers.
 * With `hash`, each chunk is hashed as it passes.
 */
function borrowed(source: Readable, hash?: Hash): Readable {
  const onData = (chunk: Buffer): void => {
    hash?.update(chunk);
    if (!stand.push(chunk)) source.pause();
  };
  const onEnd = (): void => {
    stand.push(null);
  };
  const onError = (error: Error): void => {
    stand.destroy(error);
  };
  const onClose = (): void => {
    if (!source.readableEnded) stand.destroy(new Error('the source closed before its end'));
  };
  const stand: Readable = new Readable({
    read: () => source.resume(),
    destroy: (error, done) => {
      source.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      done(error);
    },
  });
  source.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  source.pause();
  // Already over before it was borrowed (the page's connection dropped while the links were asked for): its
  // 'error' and 'close' have been emitted, so the stand-in fails now instead of waiting for bytes forever.
  if (source.destroyed && !source.readableEnded) process.nextTick(() => stand.destroy(source.errored ?? new Error('the source closed before its end')));
  return stand;
}

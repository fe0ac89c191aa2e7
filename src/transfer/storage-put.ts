import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { isNetworkError } from '../trackers/shotgrid/errors.ts';

// One PUT of one part (or a whole small file) to a presigned storage URL, as S3 wants it: an exact
// Content-Length (never chunked), Content-MD5 so storage refuses bytes that changed on the way, no Authorization
// header (the URL carries the signature), and the returned ETag checked against the MD5 of what was sent.

export type PartBody =
  /** Bytes the caller holds: they can be sent again after a failure. */
  | { bytes: Buffer }
  /** Bytes streaming through (from the browser): sent once; `contentMd5` is the sender's digest (base64), if any. */
  | { stream: Readable; size: number; contentMd5?: string };

export interface PutResult {
  /** As storage returned it, quoted. */
  etag: string;
  /** MD5 of the bytes sent, hex. */
  md5: string;
}

export class StoragePutError extends Error {
  readonly status: number | null;
  /** S3's error code (BadDigest, SlowDown, AccessDenied, …) or ETagMismatch / Network. */
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
}

export async function putPart(url: string, body: PartBody, options: { dispatcher?: Dispatcher; signal?: AbortSignal } = {}): Promise<PutResult> {
  let size: number;
  let payload: Buffer | Readable;
  let digest: () => string;
  const headers: Record<string, string> = {};
  if ('bytes' in body) {
    const md5 = createHash('md5').update(body.bytes).digest();
    size = body.bytes.length;
    payload = body.bytes;
    headers['content-md5'] = md5.toString('base64');
    digest = () => md5.toString('hex');
  } else if (body.contentMd5 !== undefined) {
    // The sender's digest goes to storage, which refuses bytes that do not match it (BadDigest): hashing them
    // again here would prove nothing more, and would cost a core's worth of MD5 on every byte.
    size = body.size;
    payload = borrowed(body.stream);
    headers['content-md5'] = body.contentMd5;
    digest = () => Buffer.from(body.contentMd5!, 'base64').toString('hex');
  } else {
    // No digest from the sender: compute one on the way, to check the ETag storage returns.
    const hash = createHash('md5');
    size = body.size;
    payload = body.stream.pipe(hashing(hash));
    body.stream.once('error', (error) => (payload as Readable).destroy(error));
    digest = () => hash.digest('hex');
  }
  headers['content-length'] = String(size);

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
  if (statusCode !== 200) throw storageRefusal(statusCode, text);

  const md5 = digest();
  const etag = String(responseHeaders.etag ?? '');
  const plain = etag.replace(/^"|"$/g, '');
  // A single-part ETag from S3 is the MD5 of the bytes; anything else (e.g. SSE-KMS) cannot be checked.
  if (/^[0-9a-f]{32}$/i.test(plain) && plain.toLowerCase() !== md5) {
    throw new StoragePutError(`storage stored different bytes (ETag ${plain}, sent MD5 ${md5})`, { status: 200, code: 'ETagMismatch', retryable: true });
  }
  if (etag === '') throw new StoragePutError('storage answered without an ETag', { status: 200, code: 'NoETag', retryable: true });
  return { etag: etag.startsWith('"') ? etag : `"${etag}"`, md5 };
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
 */
function borrowed(source: Readable): Readable {
  const onData = (chunk: Buffer): void => {
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
  return stand;
}

function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { finished, type Readable } from 'node:stream';
import type { FaultInjector } from '../faults.ts';
import { fileChunkSize } from './disk.ts';
import { parseRange } from './http-range.ts';
import type { BodyChecks, ObjectStorage, ServerSideEncryption, StoredObject } from './object-storage.ts';
import { errorXml, maxPartNumber, maxPutSize, MiB, s3Errors, StorageError } from './s3-errors.ts';
import { objectPath, type QuerySigner } from './sigv4.ts';

// The HTTP face of the sandbox's S3: path-style object URLs, presigned-URL auth only, PUT (object or part),
// GET and HEAD, S3's error XML, and the storage faults. Bodies stream between socket and disk.

export interface S3HandlerDeps {
  bucket: string;
  storage: Pick<ObjectStorage, 'putObject' | 'uploadPart' | 'hasMultipartUpload' | 'openObject'>;
  signer: QuerySigner;
  faults: FaultInjector;
  /** Announced on every PUT and GET of an encrypted bucket, as S3 does. */
  serverSideEncryption: ServerSideEncryption | null;
}

export type S3Handler = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => void;

/** One request and its response, with what S3 stamps on every answer. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  hostId: string;
  /** `Expect: 100-continue` came, and whether the 100 was sent (a refusal before it means the body never comes). */
  expectsContinue: boolean;
  continued: boolean;
}

interface ObjectTarget {
  key: string;
  query: URLSearchParams;
}

// Before an error answer the unread body is read and dropped so the connection stays usable, up to this much;
// past it the connection is closed instead (as S3 does).
const drainLimit = 32 * MiB;

// GET's response-* query parameters and the headers they set (S3 honours them on signed requests).
const responseOverrides = {
  'response-content-type': 'Content-Type',
  'response-content-disposition': 'Content-Disposition',
  'response-content-language': 'Content-Language',
  'response-content-encoding': 'Content-Encoding',
  'response-cache-control': 'Cache-Control',
  'response-expires': 'Expires',
} as const;

export function createS3Handler(deps: S3HandlerDeps): S3Handler {
  return (req, res, expectsContinue) => {
    const exchange: Exchange = {
      req,
      res,
      ...requestIds(),
      expectsContinue,
      continued: false,
    };
    void serve(deps, exchange).catch(() => res.destroy());
  };
}

async function serve(deps: S3HandlerDeps, x: Exchange): Promise<void> {
  try {
    await deps.faults.delay();
    const method = x.req.method ?? '';
    // Preflights carry no signature; the bucket has no CORS configuration, so a page that relies on
    // reaching storage from script is refused here as it would be by S3.
    if (method === 'OPTIONS') throw s3Errors.corsNotEnabled();
    const target = parseTarget(x.req.url ?? '/', deps.bucket);
    await authenticate(deps, x, method, target);
    if (method === 'PUT') {
      if (target.query.has('uploadId') || target.query.has('partNumber')) await putPart(deps, x, target);
      else await putObject(deps, x, target);
    } else if (method === 'GET' || method === 'HEAD') {
      if (target.query.has('uploadId') || target.query.has('partNumber')) throw s3Errors.notImplemented();
      await getObject(deps, x, target, method === 'HEAD');
    } else {
      throw s3Errors.methodNotAllowed(method);
    }
  } catch (error) {
    await answerError(x, error);
  }
}

function parseTarget(url: string, bucket: string): ObjectTarget {
  const queryStart = url.indexOf('?');
  const rawPath = queryStart === -1 ? url : url.slice(0, queryStart);
  const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
  if (!rawPath.startsWith('/')) throw s3Errors.invalidUri();
  const slash = rawPath.indexOf('/', 1);
  let requestedBucket: string;
  let key: string;
  try {
    requestedBucket = decodeURIComponent(rawPath.slice(1, slash === -1 ? undefined : slash));
    key = slash === -1 ? '' : decodeURIComponent(rawPath.slice(slash + 1));
  } catch {
    throw s3Errors.invalidUri();
  }
  if (requestedBucket !== bucket) throw s3Errors.noSuchBucket(requestedBucket);
  // Bucket-level operations (listing, bucket CORS…) are not part of this sandbox.
  if (key === '') throw s3Errors.notImplemented();
  return { key, query };
}

async function authenticate(deps: S3HandlerDeps, x: Exchange, method: string, target: ObjectTarget): Promise<void> {
  const hasQueryAuth = target.query.has('X-Amz-Algorithm');
  const authorization = x.req.headers.authorization;
  // A client that forwards its API Bearer token to storage is caught here, as S3 catches it.
  if (hasQueryAuth && authorization !== undefined) throw s3Errors.oneAuthMechanism();
  if (!hasQueryAuth) {
    if (authorization !== undefined) throw s3Errors.unsupportedAuthorization();
    throw s3Errors.accessDenied();
  }
  await deps.signer.verify({
    method,
    // Re-encoded from the decoded key: the signature covers the key, not one client's choice of escapes.
    path: objectPath(deps.bucket, target.key),
    query: target.query,
    headers: x.req.headers,
    now: new Date(),
    ttlSeconds: deps.faults.settings.signedUrlTtlSeconds,
  });
}

async function putObject(deps: S3HandlerDeps, x: Exchange, target: ObjectTarget): Promise<void> {
  const checks = putChecks(x.req);
  if (await playPutFault(deps, x, checks.expectedSize)) return;
  startBody(x);
  const contentType = x.req.headers['content-type'];
  const stored = await deps.storage.putObject(target.key, x.req, contentType, checks);
  answerStored(deps, x, stored.etag);
}

async function putPart(deps: S3HandlerDeps, x: Exchange, target: ObjectTarget): Promise<void> {
  const uploadId = target.query.get('uploadId');
  const partNumberText = target.query.get('partNumber');
  if (uploadId === null) throw s3Errors.invalidRequest('A part upload needs both partNumber and uploadId');
  const checks = putChecks(x.req);
  if (partNumberText === null || !/^\d{1,5}$/.test(partNumberText)) {
    throw s3Errors.invalidPartNumber(partNumberText ?? '');
  }
  const partNumber = Number(partNumberText);
  if (partNumber < 1 || partNumber > maxPartNumber) throw s3Errors.invalidPartNumber(partNumberText);
  if (!deps.storage.hasMultipartUpload(target.key, uploadId)) throw s3Errors.noSuchUpload(uploadId);
  if (await playPutFault(deps, x, checks.expectedSize)) return;
  startBody(x);
  const part = await deps.storage.uploadPart(target.key, uploadId, partNumber, x.req, checks);
  answerStored(deps, x, part.etag);
}

/**
 * Content-Length (required, at most 5 GiB) and Content-MD5 (16 bytes, base64; only reaches here when the URL
 * signed it: an unsigned one was refused with the signature check).
 */
function putChecks(req: IncomingMessage): BodyChecks & { expectedSize: number } {
  const lengthHeader = req.headers['content-length'];
  if (lengthHeader === undefined) throw s3Errors.missingContentLength();
  const expectedSize = Number(lengthHeader);
  if (expectedSize > maxPutSize) throw s3Errors.entityTooLarge(expectedSize);
  const md5Header = req.headers['content-md5'];
  if (md5Header === undefined) return { expectedSize };
  const md5 = (Array.isArray(md5Header) ? md5Header.join(',') : md5Header).trim();
  if (!/^[A-Za-z0-9+/]{22}==$/.test(md5)) throw s3Errors.invalidDigest(md5);
  return { expectedSize, contentMd5: Buffer.from(md5, 'base64') };
}

/** Plays the configured storage PUT fault; true when the request was answered (or dropped) by it. */
async function playPutFault(deps: S3HandlerDeps, x: Exchange, size: number): Promise<boolean> {
  const fault = deps.faults.storagePutFault();
  if (fault === null) return false;
  startBody(x);
  if (fault === 'reset') {
    // Take part of the body, then reset: the client sees its connection die mid-upload, nothing is stored.
    if (size > 0) await readAtLeast(x.req, Math.max(1, Math.floor(size / 2)));
    x.req.socket.resetAndDestroy();
    return true;
  }
  // S3's 500s and 503s come after the body was received: read and drop it, then answer.
  await drain(x.req, Number.POSITIVE_INFINITY);
  throw fault === '500' ? s3Errors.internalError() : s3Errors.slowDown();
}

/** S3's x-amz-request-id and x-amz-id-2, from one UUID (its entropy is drawn in batches: cheaper per request). */
function requestIds(): { requestId: string; hostId: string } {
  const hex = randomUUID().replaceAll('-', '');
  return { requestId: hex.slice(0, 16).toUpperCase(), hostId: Buffer.from(hex, 'hex').toString('base64') };
}

function answerStored(deps: S3HandlerDeps, x: Exchange, etag: string): void {
  x.res.writeHead(200, { ...stamp(x), ...encryptionHeader(deps), ETag: etag, 'Content-Length': '0' });
  x.res.end();
}

async function getObject(deps: S3HandlerDeps, x: Exchange, target: ObjectTarget, headOnly: boolean): Promise<void> {
  const overrides = responseHeaderOverrides(target.query);
  const opened = await deps.storage.openObject(target.key);
  if (!opened) throw s3Errors.noSuchKey(target.key);
  const { object, file } = opened;
  let handedOver = false;
  try {
    const headers: OutgoingHttpHeaders = {
      ...stamp(x),
      ...encryptionHeader(deps),
      'Accept-Ranges': 'bytes',
      'Content-Type': object.contentType,
      ETag: object.etag,
      'Last-Modified': object.lastModified.toUTCString(),
      ...overrides,
    };
    const precondition = checkPreconditions(x.req, object);
    if (precondition === 'not-modified') {
      x.res.writeHead(304, { ...stamp(x), ETag: object.etag, 'Last-Modified': headers['Last-Modified'] });
      x.res.end();
      return;
    }
    const rangeHeader = x.req.headers.range;
    const range = parseRange(rangeHeader, object.size);
    if (range.kind === 'unsatisfiable') {
      throw s3Errors.invalidRange(rangeHeader ?? '', object.size);
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, object.size - 1];
    const length = end - start + 1;
    headers['Content-Length'] = String(length);
    if (range.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end}/${object.size}`;
    x.res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
    if (headOnly || length === 0) {
      x.res.end();
      return;
    }
    const body = file.createReadStream({ start, end, highWaterMark: fileChunkSize });
    handedOver = true; // the stream closes the handle when it ends or is destroyed
    if (deps.faults.storageGetReset()) {
      await sendPartThenDrop(x, body, Math.floor(length / 2));
      return;
    }
    await sendBody(body, x.res);
  } finally {
    if (!handedOver) await file.close();
  }
}

/**
 * Streams a body into the response; resolves when it is sent or the client went away (nothing to answer then).
 * By pipe and `finished`: the promise `pipeline` creates an AbortController and a DOMException per call, a cost
 * the sandbox's storage would pay on every GET.
 */
function sendBody(body: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    finished(res, () => {
      body.destroy();
      resolve();
    });
    body.once('error', () => res.destroy());
    body.pipe(res);
  });
}

/** If-Match (412 when it fails) and If-None-Match (304 when it matches), in S3's order. */
function checkPreconditions(req: IncomingMessage, object: StoredObject): 'ok' | 'not-modified' {
  const matches = (header: string): boolean =>
    header.split(',').some((tag) => {
      const trimmed = tag.trim();
      return trimmed === '*' || trimmed.replace(/^W\//, '') === object.etag;
    });
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined && !matches(ifMatch)) throw s3Errors.preconditionFailed('If-Match');
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined && matches(ifNoneMatch)) return 'not-modified';
  return 'ok';
}

function responseHeaderOverrides(query: URLSearchParams): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [param, header] of Object.entries(responseOverrides)) {
    const value = query.get(param);
    if (value === null) continue;
    // S3 refuses what an HTTP/1.1 header cannot carry (e.g. a raw UTF-8 file name in the disposition).
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) throw s3Errors.headerNotLatin1(param);
    headers[header] = value;
  }
  return headers;
}

/** The GET reset fault: sends `count` bytes of the body, waits until they are on the wire, then drops the socket. */
async function sendPartThenDrop(x: Exchange, body: Readable, count: number): Promise<void> {
  const closed = once(x.res, 'close').catch(() => undefined);
  let sent = 0;
  let flushed: Promise<unknown> = Promise.resolve();
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const piece = sent + chunk.length > count ? chunk.subarray(0, count - sent) : chunk;
      let ready = true;
      flushed = new Promise<void>((resolve) => {
        ready = x.res.write(piece, () => resolve());
      });
      sent += piece.length;
      if (!ready) await Promise.race([once(x.res, 'drain'), closed]);
      if (sent >= count || x.res.destroyed) break;
    }
    if (sent === 0) x.res.flushHeaders();
    await Promise.race([flushed, closed]);
  } finally {
    body.destroy();
    x.req.socket.destroy();
  }
}

/** The 100 Continue, once, just before the body is read. */
function startBody(x: Exchange): void {
  if (x.expectsContinue && !x.continued) {
    x.continued = true;
    x.res.writeContinue();
  }
}

async function answerError(x: Exchange, caught: unknown): Promise<void> {
  const { req, res } = x;
  // Mid-transfer failures (the client left, a fault dropped the socket): there is no one to answer.
  if (req.socket.destroyed || res.headersSent) {
    res.destroy();
    return;
  }
  const error = caught instanceof StorageError ? caught : s3Errors.internalError();
  await settleBody(x);
  if (req.socket.destroyed) return;
  const body = req.method === 'HEAD' ? '' : errorXml(error, x.requestId, x.hostId);
  const headers: OutgoingHttpHeaders = {
    ...stamp(x),
    'Content-Type': 'application/xml',
    'Content-Length': String(Buffer.byteLength(body)),
  };
  if (error.code === 'InvalidRange') headers['Content-Range'] = `bytes */${error.details['ActualObjectSize'] ?? '*'}`;
  res.writeHead(error.status, headers);
  res.end(body);
}

/** Before an error answer: drop the unread body when that is cheap, else close the connection after answering. */
async function settleBody(x: Exchange): Promise<void> {
  const { req, res } = x;
  if (req.complete || req.readableEnded) return;
  // The client still waits for the 100 and will not send the body: the connection cannot be reused.
  if (x.expectsContinue && !x.continued) {
    res.setHeader('Connection', 'close');
    return;
  }
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (!(declared > drainLimit) && (await drain(req, drainLimit))) return;
  res.setHeader('Connection', 'close');
}

/** Reads and drops the rest of the body; false when it was longer than `limit` or the connection failed. */
function drain(req: IncomingMessage, limit: number): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (drained: boolean): void => {
      req.off('data', onData).off('end', onEnd).off('error', onFail).off('close', onFail);
      if (!drained) req.pause();
      resolve(drained);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limit) finish(false);
    };
    const onEnd = (): void => finish(true);
    const onFail = (): void => finish(false);
    req.on('data', onData).once('end', onEnd).once('error', onFail).once('close', onFail);
    req.resume();
  });
}

/** Resolves once `count` bytes of the body have arrived (or the body ended or failed first). */
function readAtLeast(req: IncomingMessage, count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (): void => {
      req.off('data', onData).off('end', finish).off('error', finish).off('close', finish);
      req.pause();
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen >= count) finish();
    };
    req.on('data', onData).once('end', finish).once('error', finish).once('close', finish);
    req.resume();
  });
}

/** The header a client reads to know the ETag is not an MD5 (shotgrid-rest.md, "Upload (direct to storage)"). */
function encryptionHeader(deps: S3HandlerDeps): Record<string, string> {
  return deps.serverSideEncryption === null ? {} : { 'x-amz-server-side-encryption': deps.serverSideEncryption };
}

function stamp(x: Exchange): Record<string, string> {
  return { 'x-amz-request-id': x.requestId, 'x-amz-id-2': x.hostId, Server: 'AmazonS3' };
}

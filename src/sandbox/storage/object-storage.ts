import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, type ReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { lookup } from 'node:dns/promises';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FaultInjector } from '../faults.ts';
import {
  concatenateFiles,
  fileChunkSize,
  generatedPath,
  removeQuietly,
  writeBufferToFile,
  writeStreamToFile,
  type WrittenFile,
} from './disk.ts';
import { maxPartNumber, minPartSize, s3Errors, StorageError } from './s3-errors.ts';
import { createS3Handler } from './s3-http.ts';
import { objectPath, QuerySigner } from './sigv4.ts';

// The sandbox's S3: a bucket of objects on disk behind presigned URLs, served on its own origin (like real S3, a
// different one from the site's API). The site calls it in-process (seed data, presigning, completing multipart
// uploads); clients reach it only over HTTP with a presigned URL.

export { StorageError } from './s3-errors.ts';

export interface ObjectStorageOptions {
  /** Objects and in-progress parts are files under here (never whole in memory). */
  dir: string;
  /** Path-style: http://127.0.0.1:<port>/<bucket>/<key>. */
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  faults: FaultInjector;
  /**
   * A bucket encrypted with SSE-KMS (a studio's Media Isolation bucket): PUTs and GETs answer
   * `x-amz-server-side-encryption: aws:kms` and ETags are 32 hex digits that are not the MD5 of the bytes.
   */
  serverSideEncryption?: ServerSideEncryption;
  /** Connections from client addresses it refuses are closed at once (storage reachable only through a proxy). */
  acceptClient?: (address: string) => boolean;
}

export type ServerSideEncryption = 'aws:kms';

export interface StoredObject {
  key: string;
  size: number;
  /** Quoted, as S3 sends it: `"<md5hex>"`, or `"<hex>-N"` for a multipart upload (not the MD5 when encrypted). */
  etag: string;
  contentType: string;
  /** The file holding the bytes (a generated name, never derived from the key). */
  path: string;
  lastModified: Date;
}

export interface StoredPart {
  partNumber: number;
  size: number;
  /** Quoted `"<md5hex>"` (32 other hex digits when encrypted). */
  etag: string;
}

/** Checks S3 makes on a received body. */
export interface BodyChecks {
  /** The Content-Length announced: fewer bytes means the upload is refused (IncompleteBody). */
  expectedSize?: number;
  /** The decoded Content-MD5 header: a mismatch means BadDigest, and nothing is stored. */
  contentMd5?: Buffer;
}

export type ObjectSource = Buffer | string | NodeJS.ReadableStream;

interface PartFile extends StoredPart {
  md5: Buffer;
  path: string;
}

interface MultipartUpload {
  id: string;
  key: string;
  contentType: string;
  parts: Map<number, PartFile>;
  /** Set while the parts are being joined: the upload takes no more parts and cannot be aborted. */
  completing: boolean;
}

/** What S3 stores when a PUT names no Content-Type. */
export const defaultContentType = 'binary/octet-stream';
const maxKeyBytes = 1024;

export class ObjectStorage {
  readonly #bucket: string;
  readonly #faults: FaultInjector;
  readonly #signer: QuerySigner;
  readonly #objectsDir: string;
  readonly #partsDir: string;
  readonly #objects = new Map<string, StoredObject>();
  readonly #uploads = new Map<string, MultipartUpload>();
  readonly #encryption: ServerSideEncryption | null;
  readonly #acceptClient: ((address: string) => boolean) | null;
  #servers: Server[] = [];
  #origin: URL | undefined;

  constructor(options: ObjectStorageOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new Error(`Invalid bucket name '${options.bucket}': 3 to 63 characters, lower-case letters, digits, '.', '-'`);
    }
    this.#bucket = options.bucket;
    this.#faults = options.faults;
    this.#encryption = options.serverSideEncryption ?? null;
    this.#acceptClient = options.acceptClient ?? null;
    this.#signer = new QuerySigner(options.region, options.credentials);
    this.#objectsDir = path.join(options.dir, 'objects');
    this.#partsDir = path.join(options.dir, 'parts');
    mkdirSync(this.#objectsDir, { recursive: true });
    mkdirSync(this.#partsDir, { recursive: true });
  }

  /**
   * Starts the HTTP server; resolves to its origin, e.g. 'http://localhost:PORT'. `host` is where it listens: an
   * address, or a name it listens on every address of (one port), so that a client reaches it whichever address
   * the name resolves to first (`localhost`: 127.0.0.1 and ::1). `urlHost` is the host name in the URLs it
   * presigns (and so the one requests must carry: the signature covers `host`).
   */
  async listen(port = 0, host = '127.0.0.1', urlHost = host): Promise<string> {
    if (this.#servers.length > 0) throw new Error('ObjectStorage is already listening');
    const handle = createS3Handler({
      bucket: this.#bucket,
      storage: this,
      signer: this.#signer,
      faults: this.#faults,
      serverSideEncryption: this.#encryption,
    });
    const newServer = (): Server => {
      // Transfers of GiBs take long: no whole-request timeout (headers still must come in time).
      const server = createServer({ requestTimeout: 0 }, (req, res) => handle(req, res, false));
      server.on('checkContinue', (req, res) => handle(req, res, true));
      const accept = this.#acceptClient;
      if (accept) server.on('connection', (socket: Socket) => void (accept(socket.remoteAddress ?? '') || socket.destroy()));
      return server;
    };
    const addresses = isIP(host) ? [host] : [...new Set((await lookup(host, { all: true })).map((found) => found.address))];
    this.#servers = await listenOnAll(newServer, addresses, port);
    const { port: boundPort } = this.#servers[0]?.address() as AddressInfo;
    const shownHost = urlHost === '0.0.0.0' || urlHost === '::' ? '127.0.0.1' : urlHost;
    this.#origin = new URL(`http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${boundPort}`);
    return this.#origin.origin;
  }

  get origin(): string {
    return this.#listeningOrigin().origin;
  }

  /** Stops listening and drops every open connection (transfers in flight fail; their partial files go). */
  async close(): Promise<void> {
    const servers = this.#servers;
    this.#servers = [];
    await Promise.all(servers.map(closeServer));
  }

  /** A presigned URL for one object; `query` (e.g. response-content-disposition) is covered by the signature. */
  async presign(
    method: 'PUT' | 'GET' | 'HEAD',
    key: string,
    options: { expiresIn: number; query?: Record<string, string> },
  ): Promise<string> {
    validateKey(key);
    return this.#signer.presignUrl({
      method,
      origin: this.#listeningOrigin(),
      path: objectPath(this.#bucket, key),
      query: options.query ?? {},
      expiresIn: options.expiresIn,
    });
  }

  /** Starts a multipart upload; returns its upload id. */
  createMultipartUpload(key: string, contentType: string = defaultContentType): string {
    validateKey(key);
    const id = randomBytes(24).toString('base64url');
    this.#uploads.set(id, { id, key, contentType, parts: new Map(), completing: false });
    return id;
  }

  /** A presigned PUT for part `partNumber` (not checked here: S3 presigns offline and refuses on use). */
  presignPart(key: string, uploadId: string, partNumber: number, expiresIn: number): Promise<string> {
    return this.presign('PUT', key, { expiresIn, query: { partNumber: String(partNumber), uploadId } });
  }

  hasMultipartUpload(key: string, uploadId: string): boolean {
    const upload = this.#uploads.get(uploadId);
    return upload !== undefined && upload.key === key && !upload.completing;
  }

  /** Stores one part (replacing an earlier part with the same number). */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    source: Buffer | NodeJS.ReadableStream,
    checks: BodyChecks = {},
  ): Promise<StoredPart> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > maxPartNumber) {
      throw s3Errors.invalidPartNumber(String(partNumber));
    }
    const upload = this.#openUpload(key, uploadId);
    const file = generatedPath(this.#partsDir, 'part');
    const written = await this.#receive(source, file, checks);
    // Aborted or completed while the bytes came in: the part has nowhere to go.
    if (this.#uploads.get(uploadId) !== upload || upload.completing) {
      await removeQuietly(file);
      throw s3Errors.noSuchUpload(uploadId);
    }
    const part: PartFile = { partNumber, size: written.size, etag: this.#etag(written.md5), md5: written.md5, path: file };
    const replaced = upload.parts.get(partNumber);
    upload.parts.set(partNumber, part);
    if (replaced) await removeQuietly(replaced.path);
    return { partNumber, size: part.size, etag: part.etag };
  }

  /**
   * Joins the listed parts into the object, as S3's CompleteMultipartUpload: parts in ascending order, each ETag
   * (quotes optional) matching the stored part, all but the last at least 5 MiB. Parts not listed are discarded.
   */
  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: readonly { partNumber: number; etag: string }[],
  ): Promise<StoredObject> {
    const upload = this.#openUpload(key, uploadId);
    if (parts.length === 0) throw s3Errors.malformedXml();
    if (parts.length > maxPartNumber) throw s3Errors.tooManyParts(parts.length);

    const chosen: PartFile[] = [];
    let previousNumber = 0;
    for (const { partNumber, etag } of parts) {
      if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > maxPartNumber) {
        throw s3Errors.invalidPartNumber(String(partNumber));
      }
      if (partNumber <= previousNumber) throw s3Errors.invalidPartOrder(uploadId);
      previousNumber = partNumber;
      const stored = upload.parts.get(partNumber);
      // Against the ETag the part's PUT answered: in an encrypted bucket that is not the MD5.
      if (!stored || normalizeEtag(etag) !== normalizeEtag(stored.etag)) {
        throw s3Errors.invalidPart(uploadId, partNumber, etag);
      }
      chosen.push(stored);
    }
    for (const part of chosen.slice(0, -1)) {
      if (part.size < minPartSize) throw s3Errors.entityTooSmall(part.size, part.partNumber, part.etag);
    }

    upload.completing = true;
    const file = generatedPath(this.#objectsDir, 'obj');
    try {
      await concatenateFiles(
        chosen.map((part) => part.path),
        file,
      );
    } catch {
      upload.completing = false;
      throw s3Errors.internalError();
    }
    this.#uploads.delete(uploadId);
    await Promise.all([...upload.parts.values()].map((part) => removeQuietly(part.path)));

    // S3's multipart ETag: the MD5 of the parts' binary MD5s, then the part count (other hex when encrypted).
    const digestOfDigests = createHash('md5');
    for (const part of chosen) digestOfDigests.update(part.md5);
    const size = chosen.reduce((total, part) => total + part.size, 0);
    const etag = `${this.#etag(digestOfDigests.digest()).slice(0, -1)}-${chosen.length}"`;
    return this.#commit(key, file, size, etag, upload.contentType);
  }

  /** Drops the upload and its parts' files. Unknown (or already completed) upload → NoSuchUpload. */
  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    const upload = this.#openUpload(key, uploadId);
    this.#uploads.delete(uploadId);
    await Promise.all([...upload.parts.values()].map((part) => removeQuietly(part.path)));
  }

  /** Uploads started and neither completed nor aborted (tests assert none is left behind). */
  multipartUploadsInProgress(): number {
    return this.#uploads.size;
  }

  head(key: string): StoredObject | undefined {
    const object = this.#objects.get(key);
    return object && { ...object };
  }

  /**
   * Stores an object in-process (seed data, the site itself) or from an HTTP PUT body.
   * `source` is the bytes, a path to copy from, or a stream.
   */
  async putObject(
    key: string,
    source: ObjectSource,
    contentType: string = defaultContentType,
    checks: BodyChecks = {},
  ): Promise<StoredObject> {
    validateKey(key);
    const file = generatedPath(this.#objectsDir, 'obj');
    const written = await this.#receive(
      typeof source === 'string' ? createReadStream(source, { highWaterMark: fileChunkSize }) : source,
      file,
      checks,
    );
    return this.#commit(key, file, written.size, this.#etag(written.md5), contentType);
  }

  /** The object's bytes, or the inclusive `range` of them (clamped to the object). Unknown key → NoSuchKey. */
  createReadStream(key: string, range?: { start: number; end: number }): ReadStream | Readable {
    const object = this.#objects.get(key);
    if (!object) throw s3Errors.noSuchKey(key);
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? object.size - 1, object.size - 1);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0) {
      throw new RangeError(`Invalid range ${start}-${end}`);
    }
    if (start > end) return Readable.from([]);
    // Opened now, not on first read: a later replacement of the key cannot pull the file away from this reader.
    const fd = openSync(object.path, 'r');
    try {
      return createReadStream(object.path, { fd, start, end, highWaterMark: fileChunkSize });
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The object and an open handle on its file (the HTTP GET path); undefined when the key is unknown. */
  async openObject(key: string): Promise<{ object: StoredObject; file: FileHandle } | undefined> {
    // The key may be replaced between the lookup and the open (its old file then is gone): look again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const object = this.#objects.get(key);
      if (!object) return undefined;
      try {
        return { object: { ...object }, file: await open(object.path, 'r') };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw s3Errors.internalError();
  }

  /** Removes an object; false when there was none. */
  async deleteObject(key: string): Promise<boolean> {
    const object = this.#objects.get(key);
    if (!object) return false;
    this.#objects.delete(key);
    await removeQuietly(object.path);
    return true;
  }

  #listeningOrigin(): URL {
    if (!this.#origin || this.#servers.length === 0) throw new Error('ObjectStorage is not listening: call listen() first');
    return this.#origin;
  }

  #openUpload(key: string, uploadId: string): MultipartUpload {
    const upload = this.#uploads.get(uploadId);
    if (!upload || upload.key !== key || upload.completing) throw s3Errors.noSuchUpload(uploadId);
    return upload;
  }

  async #receive(source: Buffer | NodeJS.ReadableStream, file: string, checks: BodyChecks): Promise<WrittenFile> {
    const written = Buffer.isBuffer(source) ? await writeBufferToFile(source, file) : await writeStreamToFile(source, file);
    if (checks.expectedSize !== undefined && written.size !== checks.expectedSize) {
      await removeQuietly(file);
      throw s3Errors.incompleteBody();
    }
    if (checks.contentMd5 && !checks.contentMd5.equals(written.md5)) {
      await removeQuietly(file);
      throw s3Errors.badDigest(checks.contentMd5.toString('base64'), written.md5.toString('base64'));
    }
    return written;
  }

  /**
   * The quoted ETag S3 answers for bytes with this MD5. In an SSE-KMS bucket it is 32 hex digits that are not the
   * MD5 (shotgrid-rest.md, "Upload (direct to storage)", Media Isolation): random here, so that no client can
   * take it for one; integrity must then come from the client's own MD5 of what it sent.
   */
  #etag(md5: Buffer): string {
    return this.#encryption === null ? quoted(md5) : quoted(randomBytes(16));
  }

  async #commit(key: string, file: string, size: number, etag: string, contentType: string): Promise<StoredObject> {
    const object: StoredObject = { key, size, etag, contentType, path: file, lastModified: new Date() };
    const replaced = this.#objects.get(key);
    this.#objects.set(key, object);
    // Readers of the old version hold it open: unlinking only drops the name.
    if (replaced) await removeQuietly(replaced.path);
    return { ...object };
  }
}

function validateKey(key: string): void {
  if (key.length === 0) throw new StorageError(400, 'InvalidArgument', 'Object key must not be empty');
  if (Buffer.byteLength(key) > maxKeyBytes) throw s3Errors.keyTooLong();
}

function quoted(digest: Buffer): string {
  return `"${digest.toString('hex')}"`;
}

/** Clients send part ETags with or without the quotes; compare the bare hex. */
function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^"(.*)"$/, '$1').toLowerCase();
}

/**
 * One server per address, all on one port: the port the first one got when `port` is 0 (if another address has it
 * taken, the whole set tries again). An address the machine lacks (::1 with IPv6 off) is skipped if another binds.
 */
async function listenOnAll(newServer: () => Server, addresses: readonly string[], port: number): Promise<Server[]> {
  for (let attempt = 1; ; attempt++) {
    const servers: Server[] = [];
    let unavailable: unknown;
    try {
      for (const address of addresses) {
        const server = newServer();
        const first = servers[0];
        try {
          await listenOn(server, first ? (first.address() as AddressInfo).port : port, address);
          servers.push(server);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== 'EADDRNOTAVAIL' && code !== 'EAFNOSUPPORT') throw error;
          unavailable = error;
        }
      }
      if (servers.length === 0) throw unavailable;
      return servers;
    } catch (error) {
      await Promise.all(servers.map(closeServer));
      const clash = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' && servers.length > 0;
      if (port !== 0 || !clash || attempt === 5) throw error;
    }
  }
}

function listenOn(server: Server, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

import mime from 'mime-types';
import { ObjectStorage, StorageError } from '../storage/object-storage.ts';
import { maxPartNumber, maxPutSize } from '../storage/s3-errors.ts';
import { objectPath, type QuerySigner } from '../storage/sigv4.ts';
import { validationError } from './errors.ts';
import type { Entity } from './store.ts';

// The data of `ftrack.server` (ftrack.md, "Upload into the server location"): S3-style storage on its own host name,
// reached only through signed URLs. A single-part upload URL signs Content-Type, Content-Disposition and, when the
// client gave a checksum, Content-MD5: the PUT must carry exactly those values, and storage refuses a body whose MD5
// is not the signed one (400 BadDigest) — the ObjectStorage's own S3 rules. Object keys are the resource
// identifier, which the official uploader sets to the component id.

const maxFileNameLength = 1024;
const maxMultipartSize = maxPartNumber * maxPutSize;
/** Multipart uploads open at once (there is no abort operation: a client that never completes leaves one open). */
const maxOpenMultipart = 1000;

export interface SinglePartUpload {
  url: string;
  component_id: string;
  headers: Record<string, string>;
}

export interface MultiPartUpload {
  component_id: string;
  upload_id: string;
  urls: { signed_url: string; part_number: number }[];
}

export class ServerLocation {
  readonly #storage: ObjectStorage;
  readonly #signer: QuerySigner;
  readonly #bucket: string;
  readonly #signedUrlSeconds: number;
  /** upload id → the component it was opened for (completion must name the same one). */
  readonly #multipart = new Map<string, { componentId: string; key: string }>();

  constructor(options: { storage: ObjectStorage; signer: QuerySigner; bucket: string; signedUrlSeconds: number }) {
    this.#storage = options.storage;
    this.#signer = options.signer;
    this.#bucket = options.bucket;
    this.#signedUrlSeconds = options.signedUrlSeconds;
  }

  get storage(): ObjectStorage {
    return this.#storage;
  }

  /** `get_upload_metadata` for a FileComponent the caller may write. */
  async uploadMetadata(component: Entity, operation: Record<string, unknown>): Promise<SinglePartUpload | MultiPartUpload> {
    const componentId = component.attrs.id as string;
    const fileName = operation.file_name;
    if (typeof fileName !== 'string' || fileName === '' || fileName.length > maxFileNameLength) {
      throw validationError(`file_name must be a non-empty string of at most ${maxFileNameLength} characters.`);
    }
    const parts = operation.parts ?? null;
    if (parts !== null && (!Number.isInteger(parts) || (parts as number) < 1 || (parts as number) > maxPartNumber)) {
      throw validationError(`parts must be null or a whole number from 1 to ${maxPartNumber}.`);
    }
    const fileSize = operation.file_size;
    const sizeLimit = parts === null ? maxPutSize : maxMultipartSize;
    if (!Number.isSafeInteger(fileSize) || (fileSize as number) < 0 || (fileSize as number) > sizeLimit) {
      throw validationError(`file_size must be a whole number of bytes up to ${sizeLimit}.`);
    }
    const checksum = operation.checksum ?? null;
    if (checksum !== null && (typeof checksum !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(checksum))) {
      throw validationError('checksum must be the base64 MD5 of the file (RFC 1864).');
    }
    const contentType = mime.lookup(fileName) || 'application/octet-stream';
    const key = componentId;

    if (parts !== null) {
      if (this.#multipart.size >= maxOpenMultipart) throw validationError('Too many multipart uploads in progress.');
      const uploadId = this.#storage.createMultipartUpload(key, contentType);
      this.#multipart.set(uploadId, { componentId, key });
      const urls: MultiPartUpload['urls'] = [];
      for (let partNumber = 1; partNumber <= (parts as number); partNumber++) {
        urls.push({ signed_url: await this.#storage.presignPart(key, uploadId, partNumber, this.#signedUrlSeconds), part_number: partNumber });
      }
      return { component_id: componentId, upload_id: uploadId, urls };
    }

    const signed: Record<string, string> = {
      'content-type': contentType,
      'content-disposition': `attachment; filename="${headerSafeName(fileName)}"`,
      ...(checksum !== null ? { 'content-md5': checksum } : {}),
    };
    const url = await this.#signer.presignUrl({
      method: 'PUT',
      origin: new URL(this.#storage.origin),
      path: objectPath(this.#bucket, key),
      query: {},
      expiresIn: this.#signedUrlSeconds,
      signedHeaders: signed,
    });
    const headers: Record<string, string> = {
      'Content-Type': signed['content-type']!,
      'Content-Disposition': signed['content-disposition']!,
      ...(checksum !== null ? { 'Content-MD5': checksum } : {}),
      // Listed, as in the JS repo's fixture, but not signed: the uploader skips it and the HTTP client sets its own.
      'Content-Length': String(fileSize),
    };
    return { url, component_id: componentId, headers };
  }

  /** `complete_multipart_upload`: the parts' ETags checked by storage (S3's CompleteMultipartUpload rules). */
  async completeMultipart(componentId: string, operation: Record<string, unknown>): Promise<void> {
    const uploadId = operation.upload_id;
    const upload = typeof uploadId === 'string' ? this.#multipart.get(uploadId) : undefined;
    if (!upload || upload.componentId !== componentId) {
      throw validationError(`No multipart upload "${String(uploadId)}" for component "${componentId}".`);
    }
    const parts = operation.parts;
    if (!Array.isArray(parts) || parts.length === 0 || parts.length > maxPartNumber) {
      throw validationError(`parts must list from 1 to ${maxPartNumber} parts as {part_number, e_tag}.`);
    }
    const listed = parts.map((part: unknown) => {
      const { part_number: partNumber, e_tag: etag } = (part ?? {}) as Record<string, unknown>;
      if (!Number.isInteger(partNumber) || typeof etag !== 'string' || etag.length > 200) {
        throw validationError('Each part must be {part_number: <integer>, e_tag: <string>}.');
      }
      return { partNumber: partNumber as number, etag };
    });
    try {
      await this.#storage.completeMultipartUpload(upload.key, uploadId as string, listed);
    } catch (error) {
      if (error instanceof StorageError) throw validationError(`Could not complete the upload: ${error.code}: ${error.message}`);
      throw error;
    }
    this.#multipart.delete(uploadId as string);
  }

  /** A signed GET for the data at `resourceIdentifier`, or null when storage holds none. */
  async downloadUrl(resourceIdentifier: string, fileName: string): Promise<string | null> {
    if (!this.#storage.head(resourceIdentifier)) return null;
    return this.#storage.presign('GET', resourceIdentifier, {
      expiresIn: this.#signedUrlSeconds,
      query: { 'response-content-disposition': `attachment; filename="${headerSafeName(fileName)}"` },
    });
  }

  async remove(resourceIdentifier: string): Promise<void> {
    await this.#storage.deleteObject(resourceIdentifier);
  }
}

/** A file name a header can carry as a quoted string: printable ASCII without quotes or backslashes (see README). */
export function headerSafeName(name: string): string {
  return name.replace(/[^\x20-\x7e]|["\\]/g, '_');
}

import { randomBytes } from 'node:crypto';
import express, { type Request, type Router } from 'express';
import { viewerOf } from './access.ts';
import { ApiError, API_CODE, badRequest, notFound } from './api-errors.ts';
import { statedFile } from './attachment-size.ts';
import { contentTypeFor, looksLikeImage } from './content-types.ts';
import { editableRecord, entityTypeParam } from './entity-routes.ts';
import { LocalUploadSigner } from './local-upload.ts';
import { isoSeconds, type EntityRef, type FileValue, type StoredRecord } from './records.ts';
import { entityDef, fieldDef, type EntityType } from './schema.ts';
import type { SiteContext } from './site-context.ts';
import { defaultContentType, StorageError } from './storage/object-storage.ts';

// Uploads straight to storage, as ShotGrid's REST API runs them (../shared/protocol/shotgrid-rest.md):
// GET …/_upload → a signed PUT link (and a get_next_part chain for multipart); the client PUTs the bytes;
// POST …/_upload completes with upload_info (+ etags); …/_upload/multipart_abort gives up.
// With storageService 'sg' (a local install) the PUT goes to the site itself (local-upload.ts), whose answer
// carries the upload_id that completing then requires.
// Multipart is refused where a real site cannot do it: record-level uploads, thumbnails, and local installs.

type UploadType = 'Attachment' | 'Thumbnail';

interface PendingUpload {
  target: EntityRef;
  /** The file or image field; null for a record-level upload (a new Attachment linked to the record). */
  field: string | null;
  filename: string;
  key: string;
  uploadType: UploadType;
  timestamp: string;
  /** The storage multipart upload id, or null for a single PUT. */
  multipartId: string | null;
  /** Local install only: the signature of the site's PUT link, and the upload_id its last PUT answered. */
  local: { signature: string; uploadId: string | null } | null;
}

/** The upload_info object the begin call returns and the client sends back to complete or abort. */
interface UploadInfo {
  timestamp: string;
  upload_type: UploadType;
  upload_id: string | null;
  storage_service: 's3' | 'sg';
  original_filename: string;
  multipart_upload: boolean;
}

export function uploadRouter(site: SiteContext): Router {
  const router = express.Router();
  const pending = new Map<string, PendingUpload>();
  const json = express.json({ limit: '2mb' });
  const localLinks = new LocalUploadSigner();

  const begin = async (req: Request, field: string | null) => {
    const { record, uploadType } = uploadTarget(site, req, field);
    const filename = typeof req.query.filename === 'string' ? req.query.filename : '';
    if (filename === '') throw badRequest('filename is missing', { parameter: 'filename' });
    const multipart = req.query.multipart_upload === 'true';
    if (multipart) refuseMultipart(site, field, uploadType);
    const key = `${entityDef(record.type).plural}/${record.id}/${randomBytes(12).toString('hex')}/${filename}`;
    const multipartId = multipart ? site.storage.createMultipartUpload(key, contentTypeFor(filename)) : null;
    const upload: PendingUpload = {
      target: { type: record.type, id: record.id },
      field,
      filename,
      key,
      uploadType,
      timestamp: isoSeconds(new Date()),
      multipartId,
      local: null,
    };
    let uploadLink: string;
    if (site.storageService === 'sg') {
      const signed = localLinks.sign(site.siteUrl(), uploadPath(upload), filename, viewerOf(req).user, site.signedUrlSeconds);
      upload.local = { signature: signed.signature, uploadId: null };
      uploadLink = signed.url;
    } else {
      uploadLink = multipartId
        ? await site.storage.presignPart(key, multipartId, 1, site.signedUrlSeconds)
        : await site.storage.presign('PUT', key, { expiresIn: site.signedUrlSeconds });
    }
    pending.set(pendingKey(upload), upload);
    const info: UploadInfo = {
      timestamp: upload.timestamp,
      upload_type: uploadType,
      upload_id: multipartId,
      storage_service: site.storageService,
      original_filename: filename,
      multipart_upload: multipart,
    };
    const links: Record<string, string> = { upload: uploadLink, complete_upload: uploadPath(upload) };
    if (multipartId) links.get_next_part = nextPartPath(upload, 2);
    return { data: info, links };
  };

  const nextPart = async (req: Request, field: string | null) => {
    const { record } = uploadTarget(site, req, field);
    const { filename, timestamp, upload_id: uploadId, part_number: partText } = req.query;
    const upload = typeof uploadId === 'string' ? pending.get(`multipart:${uploadId}`) : undefined;
    if (!upload || !sameTarget(upload, record, field) || upload.filename !== filename || upload.timestamp !== timestamp) {
      throw notFound('No multipart upload in progress matches upload_id, filename and timestamp');
    }
    const partNumber = Number(partText);
    if (!Number.isSafeInteger(partNumber) || partNumber < 1) throw badRequest('part_number must be a positive integer');
    // The chain never ends by itself: the client stops following it when its data ends.
    return {
      links: {
        upload: await site.storage.presignPart(upload.key, upload.multipartId!, partNumber, site.signedUrlSeconds),
        get_next_part: nextPartPath(upload, partNumber + 1),
      },
    };
  };

  /** A local install's PUT of the bytes to the site itself; answers the upload_id that completing requires. */
  const receiveLocal = async (req: Request, field: string | null) => {
    const { record } = uploadTarget(site, req, field);
    const path = req.path.replace(/\/+$/, '');
    const ticket = localLinks.verify(path, req.query as Record<string, unknown>, viewerOf(req).user);
    const upload = [...pending.values()].find(
      (candidate) => candidate.local?.signature === ticket.signature && sameTarget(candidate, record, field) && candidate.filename === ticket.filename,
    );
    if (!upload) throw notFound('No upload in progress for this link (it may have completed already)');
    // Pessimistic, as S3 is: a body of unannounced length (chunked) is refused.
    const length = Number(req.get('content-length'));
    if (req.get('content-length') === undefined || !Number.isSafeInteger(length) || length < 0) {
      throw new ApiError(411, API_CODE.badRequest, 'Content-Length is required');
    }
    try {
      await site.storage.putObject(upload.key, req, req.get('content-type') ?? defaultContentType, { expectedSize: length });
    } catch (error) {
      if (error instanceof StorageError) throw new ApiError(error.status, API_CODE.badRequest, `The upload failed: ${error.message}`);
      throw error;
    }
    // Each PUT gets a new id: completing takes the one from the PUT that stored the bytes it means.
    upload.local = { signature: ticket.signature, uploadId: randomBytes(16).toString('hex') };
    req.res!.json({
      data: { upload_id: upload.local.uploadId, original_filename: upload.filename },
      links: { complete_upload: uploadPath(upload) },
    });
  };

  const complete = async (req: Request, field: string | null) => {
    const { record } = uploadTarget(site, req, field);
    const body = req.body as { upload_info?: unknown; upload_data?: unknown } | undefined;
    const info = parseUploadInfo(body?.upload_info);
    if (typeof body?.upload_data !== 'object' || body.upload_data === null) {
      throw badRequest('upload_data is required (send {} when there is nothing to set)', { body: 'upload_data' });
    }
    const upload = findPending(pending, info, record, field);
    if (upload.local) requireLocalUploadId(upload, info);
    const stored = await finishInStorage(site, upload, info);
    pending.delete(pendingKey(upload));
    const uploadData = body.upload_data as { display_name?: unknown; tags?: unknown };
    const displayName = typeof uploadData.display_name === 'string' && uploadData.display_name !== '' ? uploadData.display_name : upload.filename;
    if (upload.uploadType === 'Thumbnail') {
      await setThumbnail(site, record, upload.key);
    } else {
      const tags = parseTags(site, uploadData.tags);
      linkUploadedFile(site, req, record, upload, { size: stored.size, displayName, tags });
    }
    // ShotGrid answers an empty 201: the new attachment's id is read back from the field or attachment_links.
    req.res!.status(201).end();
  };

  const abort = async (req: Request, field: string | null) => {
    const { record } = uploadTarget(site, req, field);
    const info = parseUploadInfo(req.body);
    if (!info.multipart_upload || info.upload_id === null) throw badRequest('Only multipart uploads can be aborted');
    const upload = findPending(pending, info, record, field);
    await site.storage.abortMultipartUpload(upload.key, info.upload_id);
    pending.delete(pendingKey(upload));
    req.res!.status(204).end();
  };

  // Record-level (new Attachment linked to the record) and field uploads share one implementation.
  for (const [prefix, fieldOf] of [
    ['/api/v1/entity/:entity/:id/_upload', () => null],
    ['/api/v1/entity/:entity/:id/:field/_upload', (req: Request) => String(req.params.field)],
  ] as const) {
    router.get(prefix, async (req, res) => void res.json(await begin(req, fieldOf(req))));
    router.put(prefix, (req) => receiveLocal(req, fieldOf(req)));
    router.post(prefix, json, (req) => complete(req, fieldOf(req)));
    router.get(`${prefix}/multipart`, async (req, res) => void res.json(await nextPart(req, fieldOf(req))));
    router.post(`${prefix}/multipart_abort`, json, (req) => abort(req, fieldOf(req)));
  }
  return router;
}

function uploadTarget(site: SiteContext, req: Request, field: string | null): { record: StoredRecord; uploadType: UploadType } {
  const type = entityTypeParam(req);
  if (field !== null) {
    const def = fieldDef(type, field);
    if (!def || (def.type !== 'url' && def.type !== 'image')) {
      throw badRequest(`${type}.${field} is not a file or image field`, { parameter: 'field' });
    }
  }
  const record = editableRecord(site, req, type);
  return { record, uploadType: field !== null && fieldDef(type, field)?.type === 'image' ? 'Thumbnail' : 'Attachment' };
}

/**
 * Where a real site cannot do multipart, the sandbox answers 400 rather than quietly a single part:
 * - record-level (fieldless) uploads: "It is not currently possible to do a multipart upload without specifying a
 *   field name" (LaikaStudios/shotgrid-rs, SG-20292; no later evidence of a fix);
 * - thumbnails: multipart on `image` is unmeasured and thumbnails are small; the pessimistic reading refuses it;
 * - local installs (`storage_service: "sg"`): no multipart (shotgrid-rest.md). Whether such a site refuses the
 *   flag or answers `multipart_upload: false` is unknown: a refusal is what no client can overlook.
 */
function refuseMultipart(site: SiteContext, field: string | null, uploadType: UploadType): void {
  const source = { parameter: 'multipart_upload' };
  if (field === null) throw badRequest('Multipart upload is not supported for uploads without a field name', source);
  if (uploadType === 'Thumbnail') throw badRequest('Multipart upload is not supported for thumbnails', source);
  if (site.storageService === 'sg') throw badRequest('Multipart upload is not supported by this site\'s storage service (sg)', source);
}

/** A local install completes only what a PUT to the site stored: upload_info must carry that PUT's upload_id. */
function requireLocalUploadId(upload: PendingUpload, info: UploadInfo): void {
  if (upload.local?.uploadId === null || upload.local?.uploadId === undefined) {
    throw badRequest('Nothing was uploaded for this upload yet: PUT the file to links.upload first', { body: 'upload_info' });
  }
  if (info.upload_id !== upload.local.uploadId) {
    throw badRequest("upload_info.upload_id must be the upload_id the upload's PUT answered", { body: 'upload_info.upload_id' });
  }
}

function pendingKey(upload: PendingUpload): string {
  return upload.multipartId
    ? `multipart:${upload.multipartId}`
    : `single:${upload.target.type}:${upload.target.id}:${upload.field ?? ''}:${upload.timestamp}:${upload.filename}`;
}

function sameTarget(upload: PendingUpload, record: StoredRecord, field: string | null): boolean {
  return upload.target.type === record.type && upload.target.id === record.id && upload.field === field;
}

function uploadPath(upload: PendingUpload): string {
  const base = `/api/v1/entity/${entityDef(upload.target.type).plural}/${upload.target.id}`;
  return upload.field === null ? `${base}/_upload` : `${base}/${upload.field}/_upload`;
}

function nextPartPath(upload: PendingUpload, partNumber: number): string {
  const query = new URLSearchParams({
    filename: upload.filename,
    part_number: String(partNumber),
    timestamp: upload.timestamp,
    upload_id: upload.multipartId ?? '',
  });
  return `${uploadPath(upload)}/multipart?${query.toString()}`;
}

function parseUploadInfo(raw: unknown): UploadInfo & { etags?: unknown } {
  if (typeof raw !== 'object' || raw === null) throw badRequest('upload_info is required', { body: 'upload_info' });
  const info = raw as Partial<UploadInfo> & { etags?: unknown };
  if (
    typeof info.timestamp !== 'string' ||
    (info.upload_type !== 'Attachment' && info.upload_type !== 'Thumbnail') ||
    typeof info.original_filename !== 'string' ||
    typeof info.multipart_upload !== 'boolean'
  ) {
    throw badRequest('upload_info must be the data object returned when the upload began', { body: 'upload_info' });
  }
  return info as UploadInfo & { etags?: unknown };
}

function findPending(pending: Map<string, PendingUpload>, info: UploadInfo, record: StoredRecord, field: string | null): PendingUpload {
  const key = info.multipart_upload
    ? `multipart:${info.upload_id ?? ''}`
    : `single:${record.type}:${record.id}:${field ?? ''}:${info.timestamp}:${info.original_filename}`;
  const upload = pending.get(key);
  if (!upload || !sameTarget(upload, record, field) || upload.filename !== info.original_filename || upload.timestamp !== info.timestamp) {
    throw badRequest('No upload in progress matches this upload_info (it may have completed or been aborted already)');
  }
  if (upload.uploadType !== info.upload_type) throw badRequest('upload_info.upload_type does not match the upload');
  return upload;
}

async function finishInStorage(site: SiteContext, upload: PendingUpload, info: UploadInfo & { etags?: unknown }): Promise<{ size: number }> {
  if (upload.multipartId) {
    const etags = info.etags;
    if (!Array.isArray(etags) || etags.length === 0 || !etags.every((tag) => typeof tag === 'string')) {
      throw badRequest('etags (one per part, in part order) are required to complete a multipart upload', { body: 'etags' });
    }
    try {
      return await site.storage.completeMultipartUpload(
        upload.key,
        upload.multipartId,
        etags.map((etag: string, index) => ({ partNumber: index + 1, etag })),
      );
    } catch (error) {
      if (error instanceof StorageError) {
        const message = `Storage refused to complete the upload: ${error.code}: ${error.message}`;
        throw error.status >= 500 ? new ApiError(500, API_CODE.server, message) : badRequest(message);
      }
      throw error;
    }
  }
  // Live: completing when nothing was PUT still answers 201 and makes an attachment over a missing object
  // (ksallee/sg-groundtruth, finding 039); its download then fails at storage (NoSuchKey). The sandbox does the same.
  return site.storage.head(upload.key) ?? { size: 0 };
}

async function setThumbnail(site: SiteContext, record: StoredRecord, key: string): Promise<void> {
  // Nothing stored (completed without a PUT): no image to make, as with bytes that are no image.
  const head = site.storage.head(key) ? await readHead(site, key) : Buffer.alloc(0);
  site.store.update(record, {
    image: { key, content_type: contentTypeFor(key), readyAt: Date.now() + site.thumbnailDelayMs, failed: !looksLikeImage(head) },
  });
}

function linkUploadedFile(
  site: SiteContext,
  req: Request,
  record: StoredRecord,
  upload: PendingUpload,
  file: { size: number; displayName: string; tags: EntityRef[] },
): void {
  const viewer = viewerOf(req);
  const project = record.type === 'Project' ? { type: 'Project' as const, id: record.id } : record.fields.project ?? null;
  const attachment = site.store.insert(
    'Attachment',
    {
      filename: upload.filename,
      project,
      attachment_links: upload.field === null ? [upload.target] : [],
      tag_list: file.tags,
      processing_status: null,
      description: null,
      image: null,
    },
    viewer.user,
  );
  const value: FileValue = {
    link_type: 'upload',
    attachmentId: attachment.id,
    name: file.displayName,
    content_type: contentTypeFor(upload.filename),
    key: upload.key,
    size: file.size,
  };
  // Created now, so after 2025: no file_size, no file_extension, as on a current site.
  site.store.update(attachment, { this_file: value, ...statedFile(String(attachment.fields.created_at), upload.filename, file.size) });
  if (upload.field !== null) site.store.update(record, { [upload.field]: value }, viewer.user);
}

function parseTags(site: SiteContext, raw: unknown): EntityRef[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badRequest('upload_data.tags must be a list of {type: "Tag", id}');
  return raw.map((tag: unknown) => {
    const { type, id } = (tag ?? {}) as { type?: unknown; id?: unknown };
    if (type !== 'Tag' || typeof id !== 'number' || !site.store.get('Tag', id)) {
      throw badRequest(`upload_data.tags: ${JSON.stringify(tag)} is not an existing Tag`);
    }
    return { type: 'Tag' as EntityType, id };
  });
}

async function readHead(site: SiteContext, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of site.storage.createReadStream(key, { start: 0, end: 15 })) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}



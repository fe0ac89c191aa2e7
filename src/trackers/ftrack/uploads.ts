import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { NewUpload, PartLocation, TrackerUpload, UploadedFile, UploadTarget } from '../tracker.ts';
import type { FtrackApi, Operation } from './api.ts';
import { isFtrackId, quoted, SERVER_LOCATION_ID, splitFileName } from './entities.ts';
import { FtrackError } from './errors.ts';

// Uploads into ftrack.server, done by the adapter itself (the official uploader needs browser globals), in
// ftrack.md's three steps ("Upload into the server location"):
// 1. begin: one batch, `create FileComponent` + `get_upload_metadata` (parts: null for one PUT, else N). A single
//    PUT's URL signs the file's checksum (Content-MD5), so it must be known before the upload begins.
// 2. the PUTs: single-part with exactly the headers the server listed (Content-Length aside, the HTTP client sets
//    it); parts with none, each answered with an ETag.
// 3. complete: `complete_multipart_upload` (parts only) + `create ComponentLocation` in ftrack.server, then what
//    the slot needs:
//    - review media (an AssetVersion's): the component on the version, marked as the review source (Metadata
//      `ami_transfer_review`), and `encode_media` so the server makes its `ftrackreview-*` components. Writing
//      `ftrackreview-mp4` + `ftr_meta` ourselves needs the frame range, rate and size, which the service does not
//      read from the file; the server's encoder does.
//    - thumbnail: the component (on the version, for a version), then the entity's `thumbnail_id`.
//    - attachment: on a version, one more component of it (`version_id`); on anything else, a Note on the entity
//      carrying the file (NoteComponent), as the web UI attaches files to a shot or task.
// There is no abort operation: giving up deletes the FileComponent (what the official client does).

export const REVIEW_MARK = 'ami_transfer_review';
/** A single PUT's link older than this is asked for again (the sandbox signs for 900 s; ftrack does not say). */
const LINK_REUSE_MS = 5 * 60_000;

interface FtrackUploadState {
  componentId: string;
  /** The AssetVersion the component belongs to, or null (a note's attachment, a context's thumbnail). */
  versionId: string | null;
  fileName: string;
  size: number;
  checksum: string | null;
  /** Single part: the link and its headers, and when they were given. */
  url: string | null;
  headers: Record<string, string> | null;
  linkAt: number;
  /** Multi-part: the upload and each part's link. */
  uploadId: string | null;
  partUrls: string[] | null;
}

export class FtrackUploads {
  readonly #api: FtrackApi;
  readonly #log: Logger | undefined;
  readonly #siteUrlOf: (type: string, id: string) => string;
  readonly #userIds = new Map<string, Promise<string>>();

  constructor(api: FtrackApi, options: { log?: Logger; siteUrlOf: (type: string, id: string) => string }) {
    this.#api = api;
    this.#log = options.log;
    this.#siteUrlOf = options.siteUrlOf;
  }

  async begin(login: string, target: UploadTarget, file: NewUpload): Promise<TrackerUpload> {
    if (!isFtrackId(target.id)) throw new FtrackError('not_found', `No ${target.type} ${target.id.slice(0, 40)} on ftrack`);
    if (target.slot === 'review-media' && target.type !== 'AssetVersion') throw new FtrackError('bad_request', `Review media goes on an AssetVersion, not a ${target.type}`);
    if (file.size === null) throw new FtrackError('bad_request', 'ftrack signs the file\'s size into its upload links: the size must be known before the upload begins');
    if (file.multipart && (file.partCount === null || file.partCount < 1)) throw new FtrackError('bad_request', 'ftrack gives every part\'s link up front: the number of parts must be known before the upload begins');
    const versionId = target.type === 'AssetVersion' ? target.id : null;
    if (versionId === null) await this.#mustExist(login, target);
    const componentId = randomUUID();
    const { name, fileType } = splitFileName(file.name);
    const metadataOperation: Operation = {
      action: 'get_upload_metadata',
      component_id: componentId,
      file_name: file.name,
      file_size: file.size,
      parts: file.multipart ? file.partCount : null,
      ...(file.checksum && !file.multipart ? { checksum: file.checksum } : {}),
    };
    // A one-piece upload whose checksum is not known yet (the page hashes the file as it sends it) asks for its
    // link when its part arrives with its MD5 (partUrl): ftrack signs the checksum into that link.
    const linkNow = file.multipart || Boolean(file.checksum);
    let reply: unknown[];
    try {
      reply = await this.#api.call(login, [
        { action: 'create', entity_type: 'FileComponent', entity_data: { id: componentId, name, file_type: fileType, size: file.size, ...(versionId ? { version_id: versionId } : {}) } },
        ...(linkNow ? [metadataOperation] : []),
      ]);
    } catch (error) {
      // A failing batch is not rolled back (sandbox README): the component may exist without an upload.
      await this.#deleteComponent(login, componentId);
      throw error;
    }
    const metadata = (reply[1] ?? {}) as { url?: unknown; headers?: unknown; upload_id?: unknown; urls?: unknown };
    const state: FtrackUploadState = {
      componentId,
      versionId,
      fileName: file.name,
      size: file.size,
      checksum: file.multipart ? null : (file.checksum ?? null),
      url: null,
      headers: null,
      linkAt: Date.now(),
      uploadId: null,
      partUrls: null,
    };
    if (file.multipart) {
      const urls = Array.isArray(metadata.urls) ? (metadata.urls as { signed_url?: unknown; part_number?: unknown }[]) : [];
      const partUrls: string[] = [];
      for (const entry of urls) {
        if (typeof entry.signed_url === 'string' && Number.isInteger(entry.part_number)) partUrls[(entry.part_number as number) - 1] = entry.signed_url;
      }
      if (typeof metadata.upload_id !== 'string' || partUrls.length !== file.partCount || partUrls.some((url) => typeof url !== 'string')) {
        await this.#deleteComponent(login, componentId);
        throw new FtrackError('protocol', 'ftrack\'s upload metadata lacks the upload id or a part\'s link');
      }
      state.uploadId = metadata.upload_id;
      state.partUrls = partUrls;
    } else if (linkNow) {
      Object.assign(state, singleLink(metadata));
    }
    return { target, filename: file.name, multipart: file.multipart, state: { ...state } };
  }

  async partUrl(login: string, upload: TrackerUpload, n: number, md5?: string): Promise<PartLocation> {
    const state = upload.state as unknown as FtrackUploadState;
    if (state.partUrls) {
      const url = state.partUrls[n - 1];
      if (!url) throw new FtrackError('bad_request', `The upload has no part ${n}`);
      // ftrack gives every part's link at the start and cannot sign them again without opening a new upload.
      return { url, receipt: 'etag' };
    }
    if (n !== 1) throw new FtrackError('bad_request', 'A one-piece upload has only part 1');
    // The checksum given at the start, or the part's own (the part is the whole file).
    const checksum = state.checksum ?? md5 ?? null;
    if (checksum === null) {
      throw new FtrackError('bad_request', 'ftrack signs a one-piece upload with the file\'s checksum: send the part with its Content-MD5 (base64 MD5)');
    }
    if (state.url === null || state.headers === null || state.checksum !== checksum || Date.now() - state.linkAt >= LINK_REUSE_MS) {
      const [metadata] = await this.#api.call(login, [
        { action: 'get_upload_metadata', component_id: state.componentId, file_name: state.fileName, file_size: state.size, parts: null, checksum },
      ]);
      const fresh = singleLink(metadata as { url?: unknown; headers?: unknown });
      return { url: fresh.url, headers: fresh.headers, receipt: 'etag' };
    }
    return { url: state.url, headers: { ...state.headers }, receipt: 'etag' };
  }

  async complete(login: string, upload: TrackerUpload, etags: readonly string[], data: { displayName?: string }): Promise<UploadedFile> {
    const state = upload.state as unknown as FtrackUploadState;
    const { target } = upload;
    const componentId = state.componentId;
    const operations: Operation[] = [];
    if (state.uploadId !== null) {
      if (etags.length !== state.partUrls?.length) throw new FtrackError('bad_request', `The upload has ${state.partUrls?.length ?? 0} parts; ${etags.length} receipts were given`);
      operations.push({
        action: 'complete_multipart_upload',
        upload_id: state.uploadId,
        component_id: componentId,
        parts: etags.map((etag, index) => ({ part_number: index + 1, e_tag: etag.replace(/^"|"$/g, '') })),
      });
    }
    const placedId = randomUUID();
    operations.push({ action: 'create', entity_type: 'ComponentLocation', entity_data: { id: placedId, component_id: componentId, resource_identifier: componentId, location_id: SERVER_LOCATION_ID } });
    await this.#api.call(login, operations);
    if (state.uploadId === null) await this.#mustHoldData(login, componentId, placedId);

    const record = this.#siteUrlOf(target.type, target.id);
    switch (target.slot) {
      case 'review-media':
        await this.#api.call(login, [
          { action: 'create', entity_type: 'Metadata', entity_data: { parent_id: componentId, parent_type: 'FileComponent', key: REVIEW_MARK, value: 'true' } },
        ]);
        try {
          await this.#api.call(login, [{ action: 'encode_media', component_id: componentId, version_id: state.versionId, keep_original: true }]);
        } catch (error) {
          // The file is stored and is the version's review media; only the server's web-playable copies are missing.
          this.#log?.warn({ err: error, componentId }, 'ftrack refused to encode the new review media');
        }
        return { attachmentId: componentId, name: upload.filename, siteUrl: record };
      case 'thumbnail':
        await this.#api.call(login, [{ action: 'update', entity_type: target.type, entity_key: [target.id], entity_data: { thumbnail_id: componentId } }]);
        return { attachmentId: null, name: upload.filename, siteUrl: record };
      case 'attachment':
        if (state.versionId === null) {
          const noteId = randomUUID();
          await this.#api.call(login, [
            {
              action: 'create',
              entity_type: 'Note',
              entity_data: { id: noteId, content: data.displayName?.trim() || upload.filename, parent_id: target.id, parent_type: target.type, user_id: await this.#userId(login) },
            },
            { action: 'create', entity_type: 'NoteComponent', entity_data: { note_id: noteId, component_id: componentId } },
          ]);
        }
        return { attachmentId: componentId, name: upload.filename, siteUrl: record };
    }
  }

  /**
   * A ComponentLocation is accepted before any data is stored (sandbox README: UNCONFIRMED on a real server), and a
   * refused PUT (400 BadDigest for a checksum that is not the file's, an expired link) stores nothing: a one-piece
   * upload is complete only once `/component/get` finds its data. Otherwise the location goes again (the upload can
   * be PUT again and completed) and the refusal is the caller's to see.
   */
  async #mustHoldData(login: string, componentId: string, placedId: string): Promise<void> {
    try {
      await this.#api.componentUrl(login, componentId);
    } catch (error) {
      if (!(error instanceof FtrackError && error.kind === 'not_found')) throw error;
      await this.#api.call(login, [{ action: 'delete', entity_type: 'ComponentLocation', entity_key: [placedId] }]).catch((cleanup: unknown) => {
        this.#log?.warn({ err: cleanup, componentId }, 'could not remove the location of an upload that stored nothing');
      });
      throw new FtrackError('bad_request', 'ftrack\'s storage holds none of the file: its PUT was refused or never made (storage refuses a body whose checksum is not the one signed, BadDigest)');
    }
  }

  async abort(login: string, upload: TrackerUpload): Promise<void> {
    await this.#deleteComponent(login, (upload.state as unknown as FtrackUploadState).componentId, true);
  }

  /** Deletes a component; gone already counts as deleted. Best effort unless `strict`. */
  async #deleteComponent(login: string, componentId: string, strict = false): Promise<void> {
    try {
      await this.#api.call(login, [{ action: 'delete', entity_type: 'FileComponent', entity_key: [componentId] }]);
    } catch (error) {
      if (error instanceof FtrackError && error.kind === 'not_found') return;
      if (strict) throw error;
      this.#log?.warn({ err: error, componentId }, 'could not delete an unfinished ftrack component');
    }
  }

  async #mustExist(login: string, target: UploadTarget): Promise<void> {
    const found = await this.#api.query(login, `select id from ${target.type} where id is ${quoted(target.id)}`);
    if (found.length === 0) throw new FtrackError('not_found', `No ${target.type} ${target.id} on ftrack, or ${login} may not see it`);
  }

  /** A user's id by username, asked once. */
  #userId(login: string): Promise<string> {
    let found = this.#userIds.get(login);
    if (!found) {
      found = this.#api.query(login, `select id from User where username is ${quoted(login)}`).then(([user]) => {
        if (typeof user?.id !== 'string') throw new FtrackError('not_found', `No ftrack user ${login}`);
        return user.id;
      });
      found.catch(() => this.#userIds.delete(login));
      this.#userIds.set(login, found);
    }
    return found;
  }
}

/** A single PUT's link: the URL and exactly the headers listed, Content-Length aside (lower-case names). */
function singleLink(metadata: { url?: unknown; headers?: unknown }): { url: string; headers: Record<string, string> } {
  if (typeof metadata.url !== 'string' || metadata.headers === null || typeof metadata.headers !== 'object') {
    throw new FtrackError('protocol', 'ftrack\'s upload metadata lacks the link or its headers');
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata.headers as Record<string, unknown>)) {
    if (name.toLowerCase() === 'content-length' || typeof value !== 'string') continue;
    headers[name.toLowerCase()] = value;
  }
  return { url: metadata.url, headers };
}

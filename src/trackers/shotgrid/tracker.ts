import { FileHeldBySite, type PartLocation, type FileKinds, type EntityId, type FileRef, type NewUpload, type NewVersion, type Selection, type SelectedEntity, type SiteRecord, type Tracker, type TrackerUpload, type UploadedFile, type UploadTarget } from '../tracker.ts';
import type { EntityRole } from '../tracker.ts';
import { ALL_FIELDS, ShotgridClient, type Fields, type SgRecord, type ShotgridClientOptions, type ShotgridSession } from './client.ts';
import { sgId, sgIdOrNull, seamId } from './ids.ts';
import { ShotgridError } from './errors.ts';
import { listSelectionFiles, type SelectedRecord } from './files.ts';
import { shotgridRoleOf } from './roles.ts';

// The Tracker interface on ShotGrid's REST API.

/** The field ShotGrid shows as an entity's name; `code` for most types, custom entities included. */
const NAME_FIELDS: Readonly<Record<string, string>> = {
  Project: 'name',
  HumanUser: 'name',
  ApiUser: 'firstname',
  Group: 'code',
  Department: 'name',
  Task: 'content',
  Note: 'subject',
  Reply: 'content',
  Ticket: 'title',
  Attachment: 'filename',
  Tag: 'name',
  ActionMenuItem: 'title',
};

/** Types with no `project` field to ask for. */
const SITE_WIDE_TYPES = new Set(['Project', 'HumanUser', 'ApiUser', 'Group', 'Department', 'Tag', 'LocalStorage', 'ActionMenuItem']);

const TRANSIENT_THUMBNAIL = '/images/status/transient/';
/** A first-part URL older than this is asked for again: ShotGrid does not say how long its links live. */
const FIRST_URL_REUSE_MS = 5 * 60_000;

/** What a ShotGrid upload needs between requests (TrackerUpload.state). */
interface ShotgridUploadState {
  info: Record<string, unknown>;
  completePath: string;
  firstUrl: string;
  firstUrlAt: number;
  /** links.get_next_part as first received (it names part 2); other parts are asked for by number. */
  nextPartPath: string | null;
}
const ID_CHUNK = 500;

export function nameFieldOf(entityType: string): string {
  return NAME_FIELDS[entityType] ?? 'code';
}

/**
 * A local install's answer to the upload PUT, `{"data":{"upload_id","original_filename"},…}`: its data goes into
 * upload_info before completing (shotgrid-rest.md, "Local installs").
 */
function localReceipt(receipt: string | undefined): Record<string, unknown> {
  let data: unknown;
  try {
    data = (JSON.parse(receipt ?? '') as { data?: unknown }).data;
  } catch {
    data = undefined;
  }
  if (typeof data !== 'object' || data === null || typeof (data as { upload_id?: unknown }).upload_id !== 'string') {
    throw new ShotgridError('protocol', 'The site\'s answer to the upload PUT carried no upload_id');
  }
  return data as Record<string, unknown>;
}

export class ShotgridTracker implements Tracker {
  readonly kind = 'shotgrid';
  readonly siteName = 'ShotGrid';
  readonly actionMenu = "ShotGrid's right-click menu";
  readonly versionType = 'Version';
  /** Each part's link comes from get_next_part as it is needed. */
  readonly unsizedMultipart = true;

  /** The API's names are the ones people see, custom entities aside (their display names need the schema). */
  typeLabel(entityType: string): string {
    return entityType;
  }

  /** A Version's status list is site configuration; these two codes are ShotGrid's defaults. */
  async versionStatuses(): Promise<{ code: string; name: string }[]> {
    return [
      { code: 'rev', name: 'Pending Review' },
      { code: 'ip', name: 'In Progress' },
    ];
  }
  readonly siteUrl: string;
  readonly client: ShotgridClient;

  /** The site's kind of storage ("s3", or "sg" on a local install), once asked. */
  #storage: Promise<string> | null = null;

  /** The Version field that holds its movie (UPLOAD_VERSION_FIELD; ShotGrid's default sg_uploaded_movie). */
  readonly #reviewMediaField: string;

  constructor(options: ShotgridClientOptions & { reviewMediaField?: string }) {
    this.client = new ShotgridClient(options);
    this.siteUrl = this.client.siteUrl;
    this.#reviewMediaField = options.reviewMediaField ?? 'sg_uploaded_movie';
  }

  #siteTarget(target: UploadTarget): { type: string; id: number; field: string | null } {
    // Upload state stored before ids were strings holds numbers (it lives a week in the store).
    return { type: target.type, id: sgId(String(target.id)), field: this.#fieldOf(target) };
  }

  /** The field a slot is at this site: null for a new Attachment linked to the record. */
  #fieldOf(target: UploadTarget): string | null {
    // Upload state stored before slots existed named the field itself (it lives a week in the store).
    const stored = (target as { field?: string | null }).field;
    if (target.slot === undefined && stored !== undefined) return stored;
    return target.slot === 'review-media' ? this.#reviewMediaField : target.slot === 'thumbnail' ? 'image' : null;
  }

  roleOf(entityType: string): EntityRole {
    return shotgridRoleOf(entityType);
  }

  checkReachable(): Promise<void> {
    return this.client.checkReachable();
  }

  async lookupSelection(login: string, entityType: string, ids: readonly EntityId[], options: { withReviewMedia?: boolean } = {}): Promise<Selection> {
    const fileField = options.withReviewMedia ? this.#reviewMediaField : undefined;
    const fields = [...this.#selectionFields(entityType), ...(fileField ? [fileField] : [])];
    const numbers = ids.map(sgIdOrNull);
    const found = await this.#readSelected(this.client.as(login), entityType, numbers.filter((id): id is number => id !== null), fields);
    const nameField = nameFieldOf(entityType);
    const visible: SelectedEntity[] = [];
    const hiddenIds: EntityId[] = [];
    for (const [index, id] of ids.entries()) {
      const number = numbers[index];
      const record = number === null || number === undefined ? undefined : found.get(number);
      if (record) visible.push({ ...this.#entity(entityType, record, nameField), ...(fileField ? { reviewMedia: fileIn(record[fileField]) } : {}) });
      else hiddenIds.push(id);
    }
    return { visible, hiddenIds };
  }

  /**
   * Record-level uploads (a new Attachment, no field) are single-part: "not currently possible to do a multipart
   * upload without specifying a field name" (Laika's client, SG-20292). Thumbnails (`image`) too: unmeasured there,
   * and small (shared/protocol/shotgrid-rest.md).
   */
  async multipartAllowed(login: string, target: UploadTarget): Promise<boolean> {
    if (this.#fieldOf(target) === null || this.#fieldOf(target) === 'image') return false;
    return (await this.#storageService(login, target)) !== 'sg';
  }

  /**
   * The site's kind of storage, learned once from its answer to an upload's start and remembered: a local install
   * ("sg") takes no multipart upload, and the part plan is made before the upload's own start. Asking starts
   * nothing: an `_upload` answer is only links until bytes are PUT and the upload completed.
   */
  async #storageService(login: string, target: UploadTarget): Promise<string> {
    this.#storage ??= this.client
      .as(login)
      .beginUpload(this.#siteTarget(target), 'storage-kind-probe.bin', false)
      .then((start) => String(start.info.storage_service ?? 's3'));
    // A failed probe is not remembered: the next upload asks again.
    this.#storage.catch(() => {
      this.#storage = null;
    });
    return this.#storage;
  }

  /** ShotGrid's `_upload` takes the name and whether it goes in parts; it signs no size, type or checksum. */
  async beginUpload(login: string, target: UploadTarget, file: NewUpload): Promise<TrackerUpload> {
    const { name: filename, multipart } = file;
    const start = await this.client.as(login).beginUpload(this.#siteTarget(target), filename, multipart);
    this.#storage ??= Promise.resolve(String(start.info.storage_service ?? 's3'));
    if (multipart && start.nextPartPath === null) throw new ShotgridError('protocol', 'A multipart upload began without links.get_next_part');
    const state: ShotgridUploadState = {
      info: start.info,
      completePath: start.completePath,
      firstUrl: start.uploadUrl,
      firstUrlAt: Date.now(),
      nextPartPath: start.nextPartPath,
    };
    return { target, filename, multipart, state: { ...state } };
  }

  async partUrl(login: string, upload: TrackerUpload, n: number): Promise<PartLocation> {
    const state = upload.state as unknown as ShotgridUploadState;
    if (n === 1 && Date.now() - state.firstUrlAt < FIRST_URL_REUSE_MS) {
      if (state.info.storage_service !== 'sg') return { url: state.firstUrl, receipt: 'etag' };
      // A local install takes the bytes itself, with the user's token: only ever sent to the site's own origin.
      if (new URL(state.firstUrl).origin !== this.siteUrl) throw new ShotgridError('protocol', 'A local install\'s upload link points outside the site');
      return { url: state.firstUrl, headers: { authorization: `Bearer ${await this.client.as(login).bearer()}` }, receipt: 'body' };
    }
    if (!upload.multipart || state.nextPartPath === null) {
      throw new ShotgridError('protocol', 'The upload link expired; a single-part upload is begun again');
    }
    // get_next_part names its part in the query; asking by number lets parts go in parallel and out of order.
    const path = new URL(state.nextPartPath, this.siteUrl);
    path.searchParams.set('part_number', String(n));
    const next = await this.client.as(login).nextPart(`${path.pathname}${path.search}`);
    return { url: next.uploadUrl, receipt: 'etag' };
  }

  async completeUpload(
    login: string,
    upload: TrackerUpload,
    etags: readonly string[],
    data: { displayName?: string; tagIds?: readonly EntityId[] },
  ): Promise<UploadedFile> {
    const state = upload.state as unknown as ShotgridUploadState;
    const session = this.client.as(login);
    const info = upload.multipart ? { ...state.info, etags: [...etags] } : state.info.storage_service === 'sg' ? { ...state.info, ...localReceipt(etags[0]) } : state.info;
    await session.completeUpload(state.completePath, info, {
      ...(data.displayName ? { display_name: data.displayName } : {}),
      ...(data.tagIds?.length ? { tags: data.tagIds.map((id) => ({ type: 'Tag' as const, id: sgId(id) })) } : {}),
    });
    // The 201 carries no id: read back what the upload created.
    const { target } = upload;
    const { id: targetId } = this.#siteTarget(target);
    const recordUrl = `${this.siteUrl}/detail/${encodeURIComponent(target.type)}/${targetId}`;
    const field = this.#fieldOf(target);
    if (field !== null) {
      const record = await session.read(target.type, targetId, [field]);
      const value = record?.[field] as { id?: unknown; name?: unknown } | string | null | undefined;
      if (field === 'image' || typeof value === 'string') return { attachmentId: null, name: upload.filename, siteUrl: recordUrl };
      if (typeof value?.id !== 'number') throw new ShotgridError('protocol', `The upload completed but ${target.type}.${field} holds no file`);
      return { attachmentId: seamId(value.id), name: typeof value.name === 'string' ? value.name : upload.filename, siteUrl: recordUrl };
    }
    const [attachment] = await session.find(
      'Attachment',
      [['attachment_links', 'is', { type: target.type, id: targetId }], ['filename', 'is', upload.filename]],
      ['this_file'],
      { sort: '-id', limit: 1 },
    );
    if (!attachment) throw new ShotgridError('protocol', 'The upload completed but no attachment was found on the record');
    const file = attachment.this_file as { name?: unknown } | null;
    return { attachmentId: seamId(attachment.id), name: typeof file?.name === 'string' ? file.name : upload.filename, siteUrl: recordUrl };
  }

  async abortUpload(login: string, upload: TrackerUpload): Promise<void> {
    if (!upload.multipart) return;
    const state = upload.state as unknown as ShotgridUploadState;
    await this.client.as(login).abortUpload(state.completePath, state.info);
  }

  async createVersion(login: string, version: NewVersion): Promise<SiteRecord> {
    const created = await this.client.as(login).create(
      'Version',
      {
        code: version.code,
        project: { type: 'Project', id: sgId(version.projectId) },
        entity: { type: version.entity.type, id: sgId(version.entity.id) },
        ...(version.taskId === null ? {} : { sg_task: { type: 'Task', id: sgId(version.taskId) } }),
        user: { type: 'HumanUser', id: sgId(version.userId) },
        ...(version.description === null ? {} : { description: version.description }),
        ...(version.status === null ? {} : { sg_status_list: version.status }),
      },
      ['code'],
    );
    return this.#siteRecord('Version', created.id, typeof created.code === 'string' ? created.code : version.code);
  }

  async deleteEntity(login: string, type: string, id: EntityId): Promise<void> {
    const number = sgIdOrNull(id);
    // No record can have that id: there is nothing to delete.
    if (number === null) return;
    try {
      await this.client.as(login).delete(type, number);
    } catch (error) {
      // Deleting twice (a retry after a lost answer, two rollbacks racing) is not a failure.
      if (!(error instanceof ShotgridError && error.kind === 'not_found')) throw error;
    }
  }

  async listPlaylists(login: string, projectId: EntityId): Promise<SiteRecord[]> {
    const found = await this.client.as(login).find('Playlist', [['project', 'is', { type: 'Project', id: sgId(projectId) }]], ['code'], { sort: '-created_at,-id', limit: 200 });
    return found.map((record) => this.#siteRecord('Playlist', record.id, typeof record.code === 'string' ? record.code : `Playlist ${record.id}`));
  }

  async createPlaylist(login: string, playlist: { name: string; projectId: EntityId; versionIds: readonly EntityId[] }): Promise<SiteRecord> {
    const created = await this.client.as(login).create(
      'Playlist',
      {
        code: playlist.name,
        project: { type: 'Project', id: sgId(playlist.projectId) },
        versions: playlist.versionIds.map((id) => ({ type: 'Version', id: sgId(id) })),
      },
      ['code'],
    );
    return this.#siteRecord('Playlist', created.id, typeof created.code === 'string' ? created.code : playlist.name);
  }

  async addToPlaylist(login: string, playlist: EntityId, versionIds: readonly EntityId[]): Promise<SiteRecord> {
    const session = this.client.as(login);
    const playlistId = sgId(playlist);
    const current = await session.read('Playlist', playlistId, ['code', 'versions']);
    if (!current) throw new ShotgridError('not_found', `Playlist ${playlistId} does not exist or is not visible to ${login}`);
    // REST replaces a multi-entity field: send what it holds plus the new ones.
    const held = Array.isArray(current.versions) ? (current.versions as { id?: unknown }[]).flatMap((v) => (typeof v.id === 'number' ? [v.id] : [])) : [];
    const ids = [...new Set([...held, ...versionIds.map(sgId)])];
    await session.update('Playlist', playlistId, { versions: ids.map((id) => ({ type: 'Version', id })) });
    return this.#siteRecord('Playlist', playlistId, typeof current.code === 'string' ? current.code : `Playlist ${playlistId}`);
  }

  async listFiles(login: string, entityType: string, ids: readonly EntityId[], kinds: FileKinds): Promise<FileRef[]> {
    const session = this.client.as(login);
    const unique = [...new Set(ids.map(sgIdOrNull).filter((id): id is number => id !== null))];
    // `*` brings every file/link field without a schema call; otherwise the selection's own fields suffice.
    const fields = kinds.fields ? ALL_FIELDS : this.#selectionFields(entityType);
    const found = await this.#readSelected(session, entityType, unique, fields);
    const nameField = nameFieldOf(entityType);
    const selected: SelectedRecord[] = unique.flatMap((id) => {
      const record = found.get(id);
      return record ? [{ entity: this.#entity(entityType, record, nameField), record }] : [];
    });
    return listSelectionFiles(session, selected, kinds);
  }

  /**
   * A fresh signed storage URL for an uploaded file or a thumbnail, from the site's 302 (not followed: the
   * Bearer token never goes to storage). Web and local links are the caller's to fetch, under its own policy.
   */
  async locateFile(login: string, file: FileRef): Promise<{ url: string }> {
    if (file.link.type !== 'upload') throw new ShotgridError('bad_request', `${file.name} is a ${file.link.type} link, not a file stored at the site`);
    const { type, id } = file.entity;
    const path =
      file.source === 'thumbnail'
        ? `/api/v1/entity/${encodeURIComponent(type)}/${id}/image`
        : // The Attachment the listing saw, not whatever the field holds now: the bytes keep the size planned,
          // and a field re-pointed at a web link since cannot send the service to a host nobody checked.
          file.attachmentId !== null
          ? `/api/v1/entity/attachments/${file.attachmentId}/this_file`
          : `/api/v1/entity/${encodeURIComponent(type)}/${id}/${encodeURIComponent(file.field ?? '')}`;
    let url: string;
    try {
      url = await this.client.as(login).locate(path, { alt: 'original' });
    } catch (error) {
      // The site's malware scan: 409 while it runs, 410 once the file is quarantined (python-api download_attachment).
      if (error instanceof ShotgridError && error.status === 409) throw new FileHeldBySite('scanning', error.message);
      if (error instanceof ShotgridError && error.status === 410) throw new FileHeldBySite('quarantined', error.message);
      throw error;
    }
    if (new URL(url).pathname.startsWith(TRANSIENT_THUMBNAIL)) {
      throw new ShotgridError('not_found', `The thumbnail of ${type} ${id} is being processed again; try later`);
    }
    return { url };
  }

  close(): Promise<void> {
    return this.client.close();
  }

  /** The selected records `session` may see, by id, read in chunks (one query per 500 ids). */
  async #readSelected(session: ShotgridSession, entityType: string, ids: readonly number[], fields: Fields): Promise<Map<number, SgRecord>> {
    const found = new Map<number, SgRecord>();
    for (let start = 0; start < ids.length; start += ID_CHUNK) {
      const chunk = ids.slice(start, start + ID_CHUNK);
      // A chunk matches at most its own length: the limit spares the empty page that would confirm it.
      for (const record of await session.find(entityType, [['id', 'in', chunk]], fields, { limit: chunk.length })) found.set(record.id, record);
    }
    return found;
  }

  /** What a SelectedEntity is made of: the name field, the thumbnail, the project, and a Task's entity. */
  #selectionFields(entityType: string): string[] {
    return [nameFieldOf(entityType), 'image', ...(SITE_WIDE_TYPES.has(entityType) ? [] : ['project']), ...(entityType === 'Task' ? ['entity'] : [])];
  }

  #siteRecord(type: string, id: number, name: string): SiteRecord {
    return { type, id: seamId(id), name, siteUrl: `${this.siteUrl}/detail/${encodeURIComponent(type)}/${id}` };
  }

  #entity(type: string, record: SgRecord, nameField: string): SelectedEntity {
    const name = record[nameField];
    const project = record.project as { id?: unknown; name?: unknown } | null | undefined;
    return {
      type,
      id: seamId(record.id),
      name: typeof name === 'string' && name !== '' ? name : `${type} ${record.id}`,
      project: project && typeof project.id === 'number' ? { id: seamId(project.id), name: typeof project.name === 'string' ? project.name : null } : null,
      thumbnail: thumbnailState(record.image),
      siteUrl: `${this.siteUrl}/detail/${encodeURIComponent(type)}/${record.id}`,
      ...(type === 'Task' ? { parent: entityLink(record.entity) } : {}),
    };
  }
}

/** A file field's value: an uploaded file or a link ({name, …}), or null when empty. */
function fileIn(value: unknown): { name: string } | null {
  if (value === null || value === undefined || value === '') return null;
  const named = value as { name?: unknown; url?: unknown };
  if (typeof named.name === 'string' && named.name !== '') return { name: named.name };
  return { name: typeof named.url === 'string' ? (named.url.split('/').pop() ?? 'a file') : 'a file' };
}

/** An entity field's value ({type, id, name}) as a link, or null. */
function entityLink(value: unknown): { type: string; id: EntityId; name: string } | null {
  const link = value as { type?: unknown; id?: unknown; name?: unknown } | null | undefined;
  if (typeof link?.type !== 'string' || typeof link.id !== 'number') return null;
  return { type: link.type, id: seamId(link.id), name: typeof link.name === 'string' && link.name !== '' ? link.name : `${link.type} ${link.id}` };
}

/** ShotGrid's image values: null, the transient "pending" placeholder (never cached), or a signed URL. */
export function thumbnailState(image: unknown): SelectedEntity['thumbnail'] {
  if (typeof image !== 'string' || image === '') return { state: 'none' };
  if (image.includes(TRANSIENT_THUMBNAIL)) return { state: 'pending' };
  return { state: 'ready', url: image };
}

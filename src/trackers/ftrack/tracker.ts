import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { EntityId, FileKinds, FileRef, NewUpload, NewVersion, PartLocation, SelectedEntity, Selection, SiteRecord, Tracker, TrackerUpload, UploadedFile, UploadTarget } from '../tracker.ts';
import type { EntityRole } from '../tracker.ts';
import { FtrackApi, type FtrackApiOptions, type FtrackEntity } from './api.ts';
import { chunks, idList, isFtrackId, nameOf, parentOf, projectOf, quoted, schemaType, selectionProjection, webUrl } from './entities.ts';
import { FtrackError } from './errors.ts';
import { listEntityFiles, reviewComponentOf } from './files.ts';
import { FtrackUploads, REVIEW_MARK } from './uploads.ts';
import { ftrackRoleOf } from './roles.ts';

// The Tracker interface on ftrack's API (../shared/protocol/ftrack.md). Every call acts as the launching user
// (their rights): the service's key with `ftrack-user` naming them (api.ts).
//
// Thumbnails: `thumbnail_id` names a component in ftrack.server; the page gets the storage URL `/component/get`
// redirects to (short-lived, no key in it), never ftrack's `/component/thumbnail?…apiKey=` URL.
// Playlists: ftrack's lists of versions (AssetVersionList, members as ListObject), in a list category ("Default"
// when the site has one, else the first by name).

/** What ftrack's web UI calls the types whose schema names its users never see. */
const TYPE_LABELS: Readonly<Record<string, string>> = {
  AssetVersion: 'Version',
  FileComponent: 'Component',
  TypedContext: 'Object',
  // The Actions menu's words for a selection of mixed types (ftrack-listener.ts): Shots and Tasks are both `task`.
  task: 'Object',
  assetversion: 'Version',
  show: 'Project',
};

/** Thumbnails resolved at once while looking up a selection. */
const THUMBNAIL_CONCURRENCY = 4;

export class FtrackTracker implements Tracker {
  readonly kind = 'ftrack';
  readonly siteName = 'ftrack';
  // Actions are offered for a selection in the web UI's Actions menu (the listener answers its discover).
  readonly actionMenu = "ftrack's Actions menu";
  readonly versionType = 'AssetVersion';
  /** get_upload_metadata signs the size and gives every part's link at once (ftrack.md). */
  readonly unsizedMultipart = false;

  typeLabel(entityType: string): string {
    return TYPE_LABELS[entityType] ?? entityType;
  }

  /** ftrack's statuses, in their order; a version takes a status by id. */
  async versionStatuses(login: string): Promise<{ code: string; name: string }[]> {
    const statuses = await this.api.query(login, 'select id, name, sort from Status order by sort');
    return statuses.flatMap((status) => (typeof status.id === 'string' && typeof status.name === 'string' ? [{ code: status.id, name: status.name }] : []));
  }
  readonly siteUrl: string;
  readonly api: FtrackApi;
  readonly #uploads: FtrackUploads;

  constructor(options: FtrackApiOptions & { log?: Logger }) {
    this.api = new FtrackApi(options);
    this.siteUrl = this.api.serverUrl;
    this.#uploads = new FtrackUploads(this.api, { ...(options.log ? { log: options.log } : {}), siteUrlOf: (type, id) => webUrl(this.siteUrl, type, id, null) });
  }

  roleOf(entityType: string): EntityRole {
    return ftrackRoleOf(entityType);
  }

  checkReachable(): Promise<void> {
    return this.api.checkReachable();
  }

  async lookupSelection(login: string, entityType: string, ids: readonly EntityId[], options: { withReviewMedia?: boolean } = {}): Promise<Selection> {
    const type = schemaType(entityType);
    const found = await this.#readSelected(login, type, ids, selectionProjection(type));
    const review = options.withReviewMedia && type === 'AssetVersion' ? await this.#reviewMedia(login, [...found.keys()]) : null;
    const visible: SelectedEntity[] = [];
    const hiddenIds: EntityId[] = [];
    for (const id of ids) {
      const entity = found.get(id);
      if (!entity) {
        hiddenIds.push(id);
        continue;
      }
      const concrete = entity.__entity_type__ ?? type;
      const project = projectOf(entity);
      visible.push({
        type: concrete,
        id,
        name: nameOf(entity),
        project,
        thumbnail: { state: 'none' },
        siteUrl: webUrl(this.siteUrl, concrete, id, project?.id ?? null),
        ...(concrete === 'Task' ? { parent: parentOf(entity) } : {}),
        ...(options.withReviewMedia ? { reviewMedia: review?.get(id) ?? null } : {}),
      });
    }
    await this.#thumbnails(login, visible, found);
    return { visible, hiddenIds };
  }

  /**
   * ftrack takes any component in parts (get_upload_metadata's `parts`), and a part needs no checksum up front;
   * thumbnails are small and go in one piece. How many parts a file needs is the uploader's plan (the official
   * uploader: more than two 8 MiB parts, ftrack.md).
   */
  async multipartAllowed(_login: string, target: UploadTarget): Promise<boolean> {
    return target.slot !== 'thumbnail';
  }

  beginUpload(login: string, target: UploadTarget, file: NewUpload): Promise<TrackerUpload> {
    return this.#uploads.begin(login, target, file);
  }

  partUrl(login: string, upload: TrackerUpload, n: number, part?: { md5?: string }): Promise<PartLocation> {
    return this.#uploads.partUrl(login, upload, n, part?.md5);
  }

  completeUpload(login: string, upload: TrackerUpload, etags: readonly string[], data: { displayName?: string; tagIds?: readonly EntityId[] }): Promise<UploadedFile> {
    // ftrack's components carry no tags: tagIds have nowhere to go.
    return this.#uploads.complete(login, upload, etags, data.displayName === undefined ? {} : { displayName: data.displayName });
  }

  abortUpload(login: string, upload: TrackerUpload): Promise<void> {
    return this.#uploads.abort(login, upload);
  }

  async listFiles(login: string, entityType: string, ids: readonly EntityId[], kinds: FileKinds): Promise<FileRef[]> {
    const type = schemaType(entityType);
    const unique = [...new Set(ids)];
    const found = await this.#readSelected(login, type, unique, type === 'AssetVersion' ? ['version', 'asset.name', 'thumbnail_id'] : type === 'Asset' ? ['name'] : ['name', 'thumbnail_id']);
    const entities = unique.flatMap((id) => {
      const entity = found.get(id);
      return entity ? [{ type: entity.__entity_type__ ?? type, id, entity }] : [];
    });
    return listEntityFiles(this.api, login, entities, kinds);
  }

  /** The storage URL ftrack's `/component/get` redirects to (the key stays in the adapter: api.ts). */
  async locateFile(login: string, file: FileRef): Promise<{ url: string }> {
    if (file.link.type !== 'upload') throw new FtrackError('bad_request', `${file.name} is a ${file.link.type} link, not a file stored at the site`);
    if (file.attachmentId === null || !isFtrackId(file.attachmentId)) throw new FtrackError('not_found', `${file.name} names no ftrack component`);
    return { url: await this.api.componentUrl(login, file.attachmentId) };
  }

  /**
   * An AssetVersion under an Asset of the entity it is a version of: that Asset when it is one, else the entity's
   * Asset named after the code (its trailing version number aside), made when missing (type "Upload" where the site
   * has it). ftrack numbers the version itself; `status_id` is required (ftrack.md): the status named, or the
   * site's first by sort order when none is.
   */
  async createVersion(login: string, version: NewVersion): Promise<SiteRecord> {
    for (const id of [version.entity.id, version.userId, ...(version.taskId ? [version.taskId] : [])]) {
      if (!isFtrackId(id)) throw new FtrackError('not_found', `No ftrack record ${id.slice(0, 40)}`);
    }
    const statusId = await this.#statusId(login, version.status);
    let assetId: string;
    let madeAsset = false;
    if (version.entity.type === 'Asset') {
      assetId = version.entity.id;
    } else {
      const assetName = version.code.replace(/[_.\s-]*v\d+$/i, '') || version.code;
      const [existing] = await this.api.query(login, `select id from Asset where context_id is ${quoted(version.entity.id)} and name is ${quoted(assetName)}`);
      if (typeof existing?.id === 'string') {
        assetId = existing.id;
      } else {
        assetId = randomUUID();
        const typeId = await this.#assetTypeId(login);
        await this.api.call(login, [{ action: 'create', entity_type: 'Asset', entity_data: { id: assetId, name: assetName, context_id: version.entity.id, type_id: typeId } }]);
        madeAsset = true;
      }
    }
    const id = randomUUID();
    try {
      await this.api.call(login, [
        {
          action: 'create',
          entity_type: 'AssetVersion',
          entity_data: {
            id,
            asset_id: assetId,
            status_id: statusId,
            user_id: version.userId,
            ...(version.taskId ? { task_id: version.taskId } : {}),
            ...(version.description === null ? {} : { comment: version.description }),
          },
        },
      ]);
    } catch (error) {
      if (madeAsset) await this.deleteEntity(login, 'Asset', assetId).catch(() => undefined);
      throw error;
    }
    const [made] = await this.api.query(login, `select version, asset.name, link from AssetVersion where id is ${quoted(id)}`);
    if (!made) throw new FtrackError('protocol', 'ftrack created a version it does not show');
    return { type: 'AssetVersion', id, name: nameOf(made), siteUrl: webUrl(this.siteUrl, 'AssetVersion', id, projectOf(made)?.id ?? version.projectId) };
  }

  async deleteEntity(login: string, type: string, id: EntityId): Promise<void> {
    if (!isFtrackId(id)) return;
    try {
      await this.api.call(login, [{ action: 'delete', entity_type: schemaType(type), entity_key: [id] }]);
    } catch (error) {
      // Deleting twice (a retry after a lost answer) is not a failure.
      if (!(error instanceof FtrackError && error.kind === 'not_found')) throw error;
    }
  }

  async listPlaylists(login: string, projectId: EntityId): Promise<SiteRecord[]> {
    if (!isFtrackId(projectId)) return [];
    const lists = await this.api.query(login, `select id, name, date from AssetVersionList where project_id is ${quoted(projectId)} order by date descending`);
    return lists.map((list) => this.#listRecord(list, projectId));
  }

  async createPlaylist(login: string, playlist: { name: string; projectId: EntityId; versionIds: readonly EntityId[] }): Promise<SiteRecord> {
    if (!isFtrackId(playlist.projectId)) throw new FtrackError('not_found', `No ftrack project ${playlist.projectId.slice(0, 40)}`);
    const categories = await this.api.query(login, 'select id, name from ListCategory order by name');
    const category = categories.find((candidate) => candidate.name === 'Default') ?? categories[0];
    if (typeof category?.id !== 'string') throw new FtrackError('bad_request', 'ftrack has no list category to put a playlist in');
    const id = randomUUID();
    await this.api.call(login, [
      { action: 'create', entity_type: 'AssetVersionList', entity_data: { id, name: playlist.name, project_id: playlist.projectId, category_id: category.id, owner_id: await this.#userId(login) } },
    ]);
    try {
      await this.#addItems(login, id, playlist.versionIds, new Set());
    } catch (error) {
      await this.deleteEntity(login, 'AssetVersionList', id).catch(() => undefined);
      throw error;
    }
    return this.#listRecord({ id, name: playlist.name }, playlist.projectId);
  }

  async addToPlaylist(login: string, playlistId: EntityId, versionIds: readonly EntityId[]): Promise<SiteRecord> {
    if (!isFtrackId(playlistId)) throw new FtrackError('not_found', `No ftrack list ${playlistId.slice(0, 40)}`);
    const [list] = await this.api.query(login, `select id, name, project_id, items.entity_id from AssetVersionList where id is ${quoted(playlistId)}`);
    if (!list) throw new FtrackError('not_found', `List ${playlistId} does not exist or ${login} may not see it`);
    const held = new Set((Array.isArray(list.items) ? (list.items as { entity_id?: unknown }[]) : []).map((item) => String(item.entity_id)));
    await this.#addItems(login, playlistId, versionIds, held);
    return this.#listRecord(list, typeof list.project_id === 'string' ? list.project_id : null);
  }

  close(): Promise<void> {
    return this.api.close();
  }

  async #addItems(login: string, listId: string, versionIds: readonly EntityId[], held: ReadonlySet<string>): Promise<void> {
    const adding = [...new Set(versionIds)].filter((id) => !held.has(id));
    for (const id of adding) if (!isFtrackId(id)) throw new FtrackError('not_found', `No ftrack version ${id.slice(0, 40)}`);
    for (const chunk of chunks(adding)) {
      if (chunk.length === 0) continue;
      await this.api.call(login, chunk.map((entityId) => ({ action: 'create', entity_type: 'ListObject', entity_data: { id: randomUUID(), list_id: listId, entity_id: entityId } })));
    }
  }

  #listRecord(list: FtrackEntity, projectId: string | null): SiteRecord {
    const id = String(list.id);
    return { type: 'AssetVersionList', id, name: typeof list.name === 'string' ? list.name : `List ${id}`, siteUrl: webUrl(this.siteUrl, 'AssetVersionList', id, projectId) };
  }

  /** The selected entities `login` may see, by id; ids no record can have are not asked for. */
  async #readSelected(login: string, type: string, ids: readonly EntityId[], projection: readonly string[]): Promise<Map<string, FtrackEntity>> {
    const found = new Map<string, FtrackEntity>();
    const valid = [...new Set(ids.filter(isFtrackId))];
    for (const chunk of chunks(valid)) {
      for (const entity of await this.api.query(login, `select id, ${projection.join(', ')} from ${type} where id in ${idList(chunk)}`)) {
        if (typeof entity.id === 'string') found.set(entity.id, entity);
      }
    }
    return found;
  }

  /** Each version's review media now: the newest `ftrackreview-*` component or upload marked as review media. */
  async #reviewMedia(login: string, versionIds: readonly string[]): Promise<Map<string, { name: string }>> {
    const byVersion = new Map<string, FtrackEntity[]>();
    for (const chunk of chunks(versionIds)) {
      for (const component of await this.api.query(login, `select id, name, file_type, created_at, version_id from FileComponent where version_id in ${idList(chunk)}`)) {
        const list = byVersion.get(String(component.version_id)) ?? [];
        list.push(component);
        byVersion.set(String(component.version_id), list);
      }
    }
    const componentIds = [...byVersion.values()].flat().map((component) => String(component.id));
    const marked = new Set<string>();
    for (const chunk of chunks(componentIds)) {
      for (const entry of await this.api.query(login, `select parent_id from Metadata where key is ${quoted(REVIEW_MARK)} and parent_id in ${idList(chunk)}`)) marked.add(String(entry.parent_id));
    }
    const out = new Map<string, { name: string }>();
    for (const [versionId, components] of byVersion) {
      const review = reviewComponentOf(components, marked);
      if (review) out.set(versionId, { name: `${String(review.name)}${typeof review.file_type === 'string' ? review.file_type : ''}` });
    }
    return out;
  }

  /** Each visible entity's thumbnail as a short-lived storage URL (no key in it); 'none' when it has none or it fails. */
  async #thumbnails(login: string, visible: SelectedEntity[], found: ReadonlyMap<string, FtrackEntity>): Promise<void> {
    const pending = visible.filter((entity) => typeof found.get(entity.id)?.thumbnail_id === 'string');
    const work = async () => {
      for (let entity = pending.shift(); entity; entity = pending.shift()) {
        try {
          entity.thumbnail = { state: 'ready', url: await this.api.componentUrl(login, String(found.get(entity.id)!.thumbnail_id)) };
        } catch {
          entity.thumbnail = { state: 'none' };
        }
      }
    };
    await Promise.all(Array.from({ length: THUMBNAIL_CONCURRENCY }, work));
  }

  async #statusId(login: string, status: string | null): Promise<string> {
    const statuses = await this.api.query(login, 'select id, name, sort from Status order by sort');
    const wanted = status?.trim().toLowerCase() ?? null;
    const match = wanted === null ? statuses[0] : statuses.find((candidate) => candidate.id === status || String(candidate.name).toLowerCase() === wanted);
    if (typeof match?.id !== 'string') throw new FtrackError('bad_request', status === null ? 'ftrack has no status for a version' : `ftrack has no status "${status}"`);
    return match.id;
  }

  async #assetTypeId(login: string): Promise<string> {
    const types = await this.api.query(login, 'select id, name, short from AssetType order by name');
    const type = types.find((candidate) => candidate.short === 'upload') ?? types[0];
    if (typeof type?.id !== 'string') throw new FtrackError('bad_request', 'ftrack has no asset type for a new asset');
    return type.id;
  }

  async #userId(login: string): Promise<string> {
    const [user] = await this.api.query(login, `select id from User where username is ${quoted(login)}`);
    if (typeof user?.id !== 'string') throw new FtrackError('not_found', `No ftrack user ${login}`);
    return user.id;
  }
}

import type { ActionContext } from '../ami/context-store.ts';
import type { KeyValueStore } from '../store/key-value-store.ts';
import type { EntityId, SelectedEntity, SiteRecord, Tracker } from '../trackers/tracker.ts';
import type { UploadRecord, UploadSessions } from '../transfer/upload-session.ts';
import { HttpError } from '../web/errors.ts';
import type { LaunchRecords } from './launch-record.ts';
import { httpErrorFromSite, httpErrorFromSiteChange } from '../web/site-errors.ts';

// "Submit for review": for each movie the user confirmed, a new Version is created as the user, then the movie
// goes up to it through the upload API. The Versions a launch created are remembered in the shared store, so
// that its uploads may target them (and nothing else), and so that a Version whose movie never arrives — the
// upload cancelled, refused, or failed for good — is deleted again: no empty Versions are left behind.

/** A Version as the page proposed it, after the user's edits. */
export interface VersionProposal {
  code: string;
  /** The selected Shot, Asset or Task it is for. */
  targetId: EntityId;
  description: string | null;
  status: string | null;
}

export interface CreatedVersion {
  id: EntityId;
  code: string;
  siteUrl: string;
  projectId: EntityId;
  entity: { type: string; id: EntityId; name: string };
  task: { id: EntityId; name: string } | null;
  /** Waiting for its movie; its movie landed; deleted again (and why). */
  state: 'awaiting-movie' | 'submitted' | 'removed';
  /** Who created it: it is removed as them, also after the launch has gone. */
  login: string;
  note: string | null;
  createdAt: string;
}

export interface ReviewSubmissionsOptions {
  store: KeyValueStore;
  tracker: Tracker;
  uploads: UploadSessions;
  /** How long a launch's record of its Versions is kept: as long as its uploads' state. */
  ttlSeconds: number;
  /** The user's record of the action, where each Version shows on their later launches too. */
  records?: LaunchRecords;
}

const MAX_CODE_LENGTH = 255;
const MAX_DESCRIPTION_LENGTH = 10_000;
/** A status as the site names it for createVersion: ShotGrid's codes (`rev`, `ip`, `apr`…), ftrack's status ids. */
const STATUS_CODE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
// Control characters (but tab and newline, which a description may hold).
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

export class ReviewSubmissions {
  readonly #options: ReviewSubmissionsOptions;

  constructor(options: ReviewSubmissionsOptions) {
    this.#options = options;
  }

  /**
   * Creates the Version as the launching user, linked to the selected Shot or Asset (for a Task: the Task's
   * entity, and the Task as sg_task), in its project, with the user as the artist; and remembers it.
   */
  async create(context: ActionContext, proposal: VersionProposal): Promise<CreatedVersion> {
    const code = proposal.code.trim();
    if (code === '' || code.length > MAX_CODE_LENGTH || CONTROL.test(code)) {
      throw HttpError.badRequest(`A Version name must be 1 to ${MAX_CODE_LENGTH} characters, without control characters.`, { field: 'code' });
    }
    const description = proposal.description?.trim() || null;
    if (description !== null && (description.length > MAX_DESCRIPTION_LENGTH || CONTROL.test(description))) {
      throw HttpError.badRequest(`A description must be at most ${MAX_DESCRIPTION_LENGTH} characters, without control characters.`, { field: 'description' });
    }
    const status = proposal.status?.trim() || null;
    if (status !== null && !STATUS_CODE.test(status)) throw HttpError.badRequest('The status must be one of the site’s statuses, as the page offers them.', { field: 'status' });

    const target = await this.#selected(context, proposal.targetId);
    if (target.project === null) {
      throw HttpError.badRequest(`${target.type} ${target.name} belongs to no project: a Version needs one.`, { field: 'targetId' });
    }
    let entity: CreatedVersion['entity'];
    let task: CreatedVersion['task'] = null;
    if (this.#options.tracker.roleOf(target.type) === 'task') {
      if (!target.parent) throw HttpError.badRequest(`The Task ${target.name} is linked to no Shot or Asset: a Version needs one.`, { field: 'targetId' });
      entity = target.parent;
      task = { id: target.id, name: target.name };
    } else {
      entity = { type: target.type, id: target.id, name: target.name };
    }

    const login = context.user.login;
    let created: SiteRecord;
    try {
      created = await this.#options.tracker.createVersion(login, {
        code,
        projectId: target.project.id,
        entity: { type: entity.type, id: entity.id },
        taskId: task?.id ?? null,
        userId: context.user.id,
        description,
        status,
      });
    } catch (error) {
      throw httpErrorFromSiteChange(error, login, `create the Version “${code}”`);
    }
    const version: CreatedVersion = {
      id: created.id,
      code: created.name,
      siteUrl: created.siteUrl,
      projectId: target.project.id,
      entity,
      task,
      state: 'awaiting-movie',
      login,
      note: null,
      createdAt: new Date().toISOString(),
    };
    await this.#save(context.id, version);
    // Watched from now on: if the page goes silent before the movie arrives, the sweep removes the Version.
    await this.heartbeat(context.id, login);
    await this.#options.store.hashSet(AWAITING, context.id, '1', this.#options.ttlSeconds);
    return version;
  }

  /** The Versions this launch created, oldest first, whatever became of them. */
  async list(contextId: string): Promise<CreatedVersion[]> {
    return [...(await this.#all(contextId)).values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id, undefined, { numeric: true }));
  }

  /** Ids of this launch's Versions still waiting for their movie: the only targets its uploads may have. */
  async awaitingMovie(contextId: string): Promise<ReadonlySet<EntityId>> {
    const waiting = new Set<EntityId>();
    for (const version of (await this.#all(contextId)).values()) if (version.state === 'awaiting-movie') waiting.add(version.id);
    return waiting;
  }

  /** After an upload to new Versions completed or was given up: keeps those whose movie landed, removes the rest. */
  async settle(context: ActionContext, record: UploadRecord): Promise<void> {
    const own = await this.#all(context.id);
    for (const { target } of record.uploads) {
      const version = target.type === this.#options.tracker.versionType ? own.get(target.id) : undefined;
      if (!version || version.state !== 'awaiting-movie') continue;
      const result = record.results?.find((candidate) => candidate.target.type === target.type && candidate.target.id === target.id);
      if (record.status === 'done' && result?.ok) {
        await this.#save(context.id, { ...version, state: 'submitted', note: null });
      } else {
        const why = record.status === 'aborted' ? 'its upload was cancelled or refused' : `its movie could not be stored (${result && !result.ok ? result.message : 'no result'})`;
        await this.remove(context, version.id, why);
      }
    }
  }

  /**
   * Deletes a Version of this launch whose movie never arrived (as the user), after giving up any upload still
   * under way to it. Removing one already removed answers as before; one whose movie landed is not removed.
   */
  async remove(context: ActionContext, versionId: EntityId, why: string): Promise<CreatedVersion> {
    const version = (await this.#all(context.id)).get(versionId);
    if (!version) throw HttpError.notFound('This launch created no Version with that id.');
    if (version.state === 'removed') return version;
    if (version.state === 'submitted') {
      throw new HttpError(409, 'version_submitted', `The movie of ${version.code} arrived: the Version stays.`);
    }
    return this.#removeAs(context.id, context.user.login, version, why);
  }

  async #removeAs(contextId: string, login: string, version: CreatedVersion, why: string): Promise<CreatedVersion> {
    const { uploads, tracker } = this.#options;
    for (const record of await uploads.list(contextId)) {
      if (record.status === 'uploading' && record.uploads.some(({ target }) => target.type === tracker.versionType && target.id === version.id)) await uploads.abort(record);
    }
    try {
      await tracker.deleteEntity(login, tracker.versionType, version.id);
    } catch (error) {
      throw httpErrorFromSiteChange(error, login, `delete the empty Version “${version.code}”`);
    }
    const removed: CreatedVersion = { ...version, state: 'removed', note: why };
    await this.#save(contextId, removed);
    return removed;
  }

  /**
   * The page says it is still there (every 30 s while a Version waits for its movie, paused uploads included).
   * A page closed mid-way stops saying so, and the sweep below removes what it left.
   */
  async heartbeat(contextId: string, login: string): Promise<void> {
    await this.#options.store.set(heartbeatKey(contextId), String(Date.now()), this.#options.ttlSeconds, { owner: login });
  }

  /**
   * Removes the Versions still waiting for their movie whose page has been silent longer than `silentMs` (the
   * overlay closed, the tab gone): as the user who created them, after giving up their uploads. Run now and then
   * by one instance at a time. Answers how many were removed.
   */
  async sweepSilent(silentMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const contextId of Object.keys(await this.#options.store.hashGetAll(AWAITING))) {
      const beat = Number((await this.#options.store.get(heartbeatKey(contextId))) ?? 0);
      const waiting = [...(await this.#all(contextId)).values()].filter((version) => version.state === 'awaiting-movie');
      if (waiting.length > 0 && now - beat <= silentMs) continue;
      for (const version of waiting) {
        await this.#removeAs(contextId, version.login, version, 'its page was closed before its movie arrived');
        removed += 1;
      }
      await this.#options.store.hashDelete(AWAITING, contextId);
    }
    return removed;
  }

  /** The project's Playlists as the user sees them (for the page's choice). */
  async playlists(context: ActionContext, projectId: EntityId): Promise<SiteRecord[]> {
    try {
      return await this.#options.tracker.listPlaylists(context.user.login, projectId);
    } catch (error) {
      throw httpErrorFromSite(error, context.user.login);
    }
  }

  /**
   * Adds Versions this launch submitted to a Playlist of their project, as the user: an existing one (which the
   * user must see in that project) or a new one by name.
   */
  async addToPlaylist(context: ActionContext, versionIds: readonly EntityId[], playlist: { id: EntityId } | { name: string }): Promise<{ playlist: SiteRecord; added: number }> {
    const own = await this.#all(context.id);
    const versions = [...new Set(versionIds)].map((id) => own.get(id));
    if (versions.length === 0) throw HttpError.badRequest('Name at least one new Version to add.', { field: 'versionIds' });
    if (!versions.every((version) => version?.state === 'submitted')) {
      throw new HttpError(403, 'version_not_submitted', 'Only the new Versions of this launch whose movie arrived can be added to a playlist.', { field: 'versionIds' });
    }
    const projectIds = new Set(versions.map((version) => version!.projectId));
    const [projectId] = projectIds;
    if (projectIds.size !== 1 || projectId === undefined) throw HttpError.badRequest('The Versions belong to different projects: a playlist holds one project’s.', { field: 'versionIds' });
    const ids = versions.map((version) => version!.id);
    const { tracker } = this.#options;
    const login = context.user.login;
    if ('id' in playlist) {
      const known = await this.playlists(context, projectId);
      if (!known.some((candidate) => candidate.id === playlist.id)) {
        throw new HttpError(404, 'playlist_not_found', 'That playlist is not one of the project’s playlists you can see.', { field: 'playlistId' });
      }
      try {
        return { playlist: await tracker.addToPlaylist(login, playlist.id, ids), added: ids.length };
      } catch (error) {
        throw httpErrorFromSiteChange(error, login, 'add the Versions to the playlist');
      }
    }
    const name = playlist.name.trim();
    if (name === '' || name.length > MAX_CODE_LENGTH || CONTROL.test(name)) {
      throw HttpError.badRequest(`A playlist name must be 1 to ${MAX_CODE_LENGTH} characters.`, { field: 'playlistName' });
    }
    try {
      return { playlist: await tracker.createPlaylist(login, { name, projectId, versionIds: ids }), added: ids.length };
    } catch (error) {
      throw httpErrorFromSiteChange(error, login, `create the playlist “${name}”`);
    }
  }

  /** The selected entity as the user sees it: it must be in the launch's selection and visible to them. */
  async #selected(context: ActionContext, id: EntityId): Promise<SelectedEntity> {
    if (!context.selectedIds.includes(id)) {
      throw new HttpError(403, 'target_outside_selection', `This ${context.entityType} is not part of this launch's selection: no Version was created.`, { field: 'targetId' });
    }
    let visible: SelectedEntity[];
    try {
      ({ visible } = await this.#options.tracker.lookupSelection(context.user.login, context.entityType, [id]));
    } catch (error) {
      throw httpErrorFromSite(error, context.user.login);
    }
    const [target] = visible;
    if (!target) {
      throw new HttpError(403, 'target_not_visible', `{site} does not show this ${context.entityType} to “${context.user.login}” (or it no longer exists): no Version was created.`, {
        field: 'targetId',
        hint: 'Ask your {site} administrator for access to its project.',
      });
    }
    return target;
  }

  async #all(contextId: string): Promise<Map<EntityId, CreatedVersion>> {
    const fields = await this.#options.store.hashGetAll(keyOf(contextId));
    return new Map(Object.values(fields).map((json) => withSeamIds(JSON.parse(json) as CreatedVersion)).map((version) => [version.id, version]));
  }

  /** Each Version is its own hash field: the page's calls and the upload hooks never overwrite each other's. */
  async #save(contextId: string, version: CreatedVersion): Promise<void> {
    await this.#options.store.hashSet(keyOf(contextId), String(version.id), JSON.stringify(version), this.#options.ttlSeconds, { owner: version.login });
    await this.#options.records?.note(
      { id: contextId, action: 'submit-for-review', user: { login: version.login } },
      {
        key: `version-${version.id}`,
        kind: 'version',
        state: version.state,
        name: version.code,
        size: null,
        targets: [{ type: version.entity.type, id: version.entity.id, name: version.entity.name }, ...(version.task ? [{ type: 'Task', id: version.task.id, name: version.task.name }] : [])],
        siteUrl: version.siteUrl,
        ...(version.note ? { note: version.note } : {}),
      },
    );
  }
}

/** A Version remembered before ids were strings holds numbers: read as the seam's strings. */
function withSeamIds(version: CreatedVersion): CreatedVersion {
  return {
    ...version,
    id: String(version.id),
    projectId: String(version.projectId),
    entity: { ...version.entity, id: String(version.entity.id) },
    task: version.task === null ? null : { ...version.task, id: String(version.task.id) },
  };
}

function keyOf(contextId: string): string {
  return `review-versions:${contextId}`;
}

function heartbeatKey(contextId: string): string {
  return `review-heartbeat:${contextId}`;
}

/** The launches that created Versions still waiting for their movie: what the sweep looks through. */
const AWAITING = 'review-awaiting';

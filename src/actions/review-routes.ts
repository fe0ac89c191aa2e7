import express, { type Request, type Router } from 'express';
import type { ActionContext, ContextStore } from '../ami/context-store.ts';
import { actionOf, contextOf, launchPageLocals, pagePath, sharedProject } from '../ami/launch-routes.ts';
import type { Config } from '../config.ts';
import type { EntityId, Selection, SiteRecord, Tracker } from '../trackers/tracker.ts';
import { entityIdOf, entityIdsOf } from './entity-ids.ts';
import { csrfToken } from '../web/csrf.ts';
import { HttpError } from '../web/errors.ts';
import { httpErrorFromSite } from '../web/site-errors.ts';
import type { LaunchRecords } from './launch-record.ts';
import { recordLists } from './record-view.ts';
import type { ReviewSubmissions, VersionProposal } from './review-submissions.ts';

// "Submit for review" (submit-for-review on Shots, Assets and Tasks): the page, and the calls it makes around
// the upload API (which sends each movie to its new Version, src/actions/upload-routes.ts):
//
//   GET    …                      the page: the selection, the project's playlists, the drop zone
//   GET    …/versions             the Versions this launch created, and what became of each
//   POST   …/versions             create one Version as the user {code, targetId, description?, status?}
//   DELETE …/versions/:id         delete a new Version whose movie did not arrive (its upload is given up first)
//   POST   …/playlist             add the submitted Versions to a playlist {versionIds, playlistId | playlistName}
//
// `…` is /ami/submit-for-review/<context id>; state-changing calls carry the CSRF token of their purpose
// ("versions", "playlist") in X-CSRF-Token, checked by the launch routes before these run.

export interface ReviewRouteDeps {
  config: Pick<Config, 'publicPath' | 'session' | 'maxUploadBytes' | 'uploadParallelParts' | 'reviewSilenceSeconds'>;
  tracker: Tracker;
  contexts: ContextStore;
  submissions: ReviewSubmissions;
  records?: LaunchRecords;
}

/** New Versions one playlist request may name (a launch makes at most as many as it has uploads). */
const MAX_PLAYLIST_VERSIONS = 2_000;

/** Beside the site's statuses, the page offers to leave the choice to the site. */
const SITE_DEFAULT_STATUS = { code: '', name: 'The site’s default' } as const;

export function reviewRoutes(deps: ReviewRouteDeps): Router {
  const router = express.Router();
  const base = '/ami/:action/:contextId';
  const json = express.json({ limit: '64kb' });
  const csrfSecret = deps.config.session.secret.reveal();

  router.get(base, async (req, res, next) => {
    const action = actionOf(req);
    if (action.page !== 'review') {
      next();
      return;
    }
    const context = await contextOf(req, deps.contexts, action);
    const selection = await siteCall(context, () => deps.tracker.lookupSelection(context.user.login, context.entityType, context.selectedIds));
    const project = context.project ?? sharedProject(selection.visible);
    const playlists = project === null ? null : await projectPlaylists(req, deps, context, project.id);
    const page = pagePath(deps.config.publicPath, context);
    res.set('Cache-Control', 'no-store');
    res.render('actions/review', {
      ...launchPageLocals(deps.config.publicPath, csrfSecret, action, context, selection, deps.tracker.typeLabel(context.entityType)),
      targets: reviewTargets(selection),
      playlists,
      statuses: [...(await versionStatuses(req, deps, context)), SITE_DEFAULT_STATUS],
      versionsApi: `${page}/versions`,
      versionsToken: csrfToken(csrfSecret, context.id, 'versions'),
      // Six beats within the silence the sweep allows: a few lost ones do not cost the user a Version.
      heartbeatMs: Math.floor((deps.config.reviewSilenceSeconds * 1000) / 6),
      uploadApi: `${page}/uploads`,
      uploadToken: csrfToken(csrfSecret, context.id, 'uploads'),
      playlistApi: `${page}/playlist`,
      playlistToken: csrfToken(csrfSecret, context.id, 'playlist'),
      maxUploadBytes: deps.config.maxUploadBytes,
      parallelParts: deps.config.uploadParallelParts,
      record: await recordLists(deps.records, deps.tracker, context, selection.visible),
    });
  });

  router.get(`${base}/versions`, async (req, res) => {
    const context = await reviewContext(req, deps);
    res.set('Cache-Control', 'no-store').json({ versions: await deps.submissions.list(context.id) });
  });

  router.post(`${base}/versions`, json, async (req, res) => {
    const context = await reviewContext(req, deps);
    const version = await deps.submissions.create(context, proposalOf(req.body));
    req.log.info({ version: version.id, entity: `${version.entity.type} ${version.entity.id}`, task: version.task?.id ?? null }, 'Version created for review');
    res.status(201).json({ version });
  });

  // The page is still there (a paused upload too): its Versions waiting for their movie are not swept away.
  router.post(`${base}/versions/heartbeat`, async (req, res) => {
    const context = await reviewContext(req, deps);
    await deps.submissions.heartbeat(context.id, context.user.login);
    res.status(204).end();
  });

  router.delete(`${base}/versions/:versionId`, async (req, res) => {
    const context = await reviewContext(req, deps);
    const id = entityIdOf(String(req.params['versionId']));
    if (id === null) throw HttpError.notFound('This launch created no Version with that id.');
    const version = await deps.submissions.remove(context, id, 'its movie did not arrive');
    req.log.info({ version: version.id }, 'empty Version removed');
    res.json({ version });
  });

  router.post(`${base}/playlist`, json, async (req, res) => {
    const context = await reviewContext(req, deps);
    const { versionIds, playlist } = playlistRequestOf(req.body);
    const added = await deps.submissions.addToPlaylist(context, versionIds, playlist);
    req.log.info({ playlist: added.playlist.id, added: added.added, created: !('id' in playlist) }, 'Versions added to a playlist');
    res.json(added);
  });

  return router;
}

async function reviewContext(req: Request, deps: ReviewRouteDeps): Promise<ActionContext> {
  const action = actionOf(req);
  if (action.action !== 'submit-for-review') throw HttpError.notFound('This action creates no Versions.');
  return contextOf(req, deps.contexts, action);
}

/** The selected entities a Version can be for, as the page needs them (a Task's entity alongside). */
function reviewTargets(selection: Selection) {
  return selection.visible.map((entity) => ({ id: entity.id, type: entity.type, name: entity.name, parent: entity.parent ?? null, siteUrl: entity.siteUrl }));
}

/** The statuses a new version may start with, as the site lists them; a failure leaves only the site's default. */
async function versionStatuses(req: Request, deps: ReviewRouteDeps, context: ActionContext): Promise<{ code: string; name: string }[]> {
  try {
    return await deps.tracker.versionStatuses(context.user.login);
  } catch (error) {
    req.log.warn({ err: error }, 'the site’s version statuses could not be listed');
    return [];
  }
}

/** The project's playlists for the page's choice; a page without them still submits, so a failure only hides them. */
async function projectPlaylists(req: Request, deps: ReviewRouteDeps, context: ActionContext, projectId: EntityId): Promise<SiteRecord[] | null> {
  try {
    return await deps.submissions.playlists(context, projectId);
  } catch (error) {
    req.log.warn({ err: error, project: projectId }, 'the project’s playlists could not be listed');
    return null;
  }
}

function proposalOf(body: unknown): VersionProposal {
  const value = (body ?? {}) as Record<string, unknown>;
  const fail = (field: string, message: string): never => {
    throw HttpError.badRequest(message, { field });
  };
  const code = typeof value.code === 'string' ? value.code : fail('code', 'code must be the new Version’s name.');
  const targetId = entityIdOf(value.targetId) ?? fail('targetId', 'targetId must be the id of a selected entity.');
  const optionalText = (field: string): string | null =>
    value[field] === undefined || value[field] === null ? null : typeof value[field] === 'string' ? value[field] : fail(field, `${field} must be text.`);
  return { code, targetId, description: optionalText('description'), status: optionalText('status') };
}

function playlistRequestOf(body: unknown): { versionIds: EntityId[]; playlist: { id: EntityId } | { name: string } } {
  const value = (body ?? {}) as Record<string, unknown>;
  const versionIds = entityIdsOf(value.versionIds, MAX_PLAYLIST_VERSIONS);
  if (versionIds === null) throw HttpError.badRequest(`versionIds must be a list of at most ${MAX_PLAYLIST_VERSIONS} of the new Versions’ ids.`, { field: 'versionIds' });
  const playlistId = value.playlistId === undefined ? null : entityIdOf(value.playlistId);
  if (playlistId !== null) return { versionIds, playlist: { id: playlistId } };
  if (typeof value.playlistName === 'string') return { versionIds, playlist: { name: value.playlistName } };
  throw HttpError.badRequest('Name a playlist: playlistId for an existing one, or playlistName for a new one.', { field: 'playlistId' });
}

async function siteCall<T>(context: ActionContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw httpErrorFromSite(error, context.user.login);
  }
}

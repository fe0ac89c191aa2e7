import express, { type Router } from 'express';
import type { ContextStore } from '../ami/context-store.ts';
import { actionOf, contextOf } from '../ami/launch-routes.ts';
import type { EntityId, SelectedEntity, Tracker } from '../trackers/tracker.ts';
import { entityIdsOf } from './entity-ids.ts';
import { HttpError } from '../web/errors.ts';
import { httpErrorFromSite } from '../web/site-errors.ts';

// set-thumbnail's page asks, after its images went up, whether the site has made the new thumbnails yet:
//
//   GET /ami/set-thumbnail/<context id>/thumbnails?ids=1,2   → {thumbnails: [{id, state, url?}]}
//
// state is `pending` while the site still serves its transient placeholder, `ready` with a short-lived URL,
// `none` when it made no thumbnail, `hidden` for an entity the user cannot see. Read as the user, every time:
// the answer is never cached, and the placeholder's URL is never handed out (the page draws "pending" itself).

export interface ThumbnailRouteDeps {
  tracker: Tracker;
  contexts: ContextStore;
}

/** A page asks for the entities it uploaded to at once; the launch's own selection bounds it anyway. */
const MAX_IDS = 500;

type ThumbnailView = { id: EntityId; state: 'pending' | 'none' | 'hidden' } | { id: EntityId; state: 'ready'; url: string };

export function thumbnailRoutes(deps: ThumbnailRouteDeps): Router {
  const router = express.Router();

  router.get('/ami/:action/:contextId/thumbnails', async (req, res) => {
    const action = actionOf(req);
    if (action.action !== 'set-thumbnail') throw HttpError.notFound('This action sets no thumbnails.');
    const context = await contextOf(req, deps.contexts, action);
    const ids = idsOf(req.query.ids);
    const selected = new Set(context.selectedIds);
    if (ids.some((id) => !selected.has(id))) {
      throw new HttpError(403, 'target_outside_selection', 'Only the thumbnails of the selected entities can be asked for.', { field: 'ids' });
    }
    let visible: SelectedEntity[];
    try {
      ({ visible } = await deps.tracker.lookupSelection(context.user.login, context.entityType, ids));
    } catch (error) {
      throw httpErrorFromSite(error, context.user.login);
    }
    const byId = new Map(visible.map((entity) => [entity.id, entity]));
    const thumbnails = ids.map((id): ThumbnailView => {
      const entity = byId.get(id);
      if (!entity) return { id, state: 'hidden' };
      return entity.thumbnail.state === 'ready' ? { id, state: 'ready', url: entity.thumbnail.url } : { id, state: entity.thumbnail.state };
    });
    // A pending answer must not be reused, nor a signed URL kept past its life.
    res.set('Cache-Control', 'no-store').json({ thumbnails });
  });

  return router;
}

function idsOf(raw: unknown): EntityId[] {
  const text = typeof raw === 'string' ? raw : '';
  const ids = entityIdsOf(text.split(',').filter((part) => part !== ''), MAX_IDS);
  if (ids === null || ids.length === 0) {
    throw HttpError.badRequest(`ids must be a comma-separated list of 1 to ${MAX_IDS} entity ids.`, { field: 'ids' });
  }
  return [...new Set(ids)];
}

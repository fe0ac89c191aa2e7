import express, { type Request, type Response, type Router } from 'express';
import { transientThumbnailPng } from '../media.ts';
import type { Accounts, Actor } from './access.ts';
import { FtrackError } from './errors.ts';
import { SERVER_LOCATION_ID } from './schema.ts';
import type { ServerLocation } from './server-location.ts';
import type { Entity, EntityStore } from './store.ts';

// Downloads from the server location (ftrack.md, "Download and thumbnails"): the user and API key travel in the
// query. Both routes answer a 302 to a signed URL on storage's own host name (UNCONFIRMED whether the real one
// redirects or streams: a redirect is the pessimistic case, a client must follow it to another host and must not
// send the key there). Missing data: /component/get answers 404; /component/thumbnail redirects to the placeholder
// /img/thumbnail2.png, as the JS client's thumbnailUrl does without an id (see README). Wrong credentials: 401.

export const placeholderThumbnailPath = '/img/thumbnail2.png';
const maxQueryValue = 256;

export interface DownloadDeps {
  store: EntityStore;
  accounts: Accounts;
  serverLocation: ServerLocation;
}

export function downloadRouter(deps: DownloadDeps): Router {
  const router = express.Router();

  router.get('/component/get', async (req, res) => {
    const actor = authenticate(deps, req, res);
    if (!actor) return;
    const found = await signedDownload(deps, actor, queryValue(req, 'id'));
    if (!found) {
      plain(res, 404, 'The component does not exist or has no data in the server location.');
      return;
    }
    redirect(res, found);
  });

  router.get('/component/thumbnail', async (req, res) => {
    const actor = authenticate(deps, req, res);
    if (!actor) return;
    const size = queryValue(req, 'size');
    if (size !== null && (!/^\d{1,4}$/.test(size) || Number(size) < 1)) {
      plain(res, 400, 'size must be a whole number of pixels.');
      return;
    }
    // The original image: the sandbox does not resize to `size`.
    const found = await signedDownload(deps, actor, queryValue(req, 'id'));
    redirect(res, found ?? placeholderThumbnailPath);
  });

  router.get(placeholderThumbnailPath, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').type('image/png').send(transientThumbnailPng());
  });
  return router;
}

function authenticate(deps: DownloadDeps, req: Request, res: Response): Actor | null {
  try {
    return deps.accounts.authenticate(queryValue(req, 'username'), queryValue(req, 'apiKey'));
  } catch (error) {
    if (!(error instanceof FtrackError)) throw error;
    plain(res, 401, 'Not authenticated: the username and apiKey do not match an active user.');
    return null;
  }
}

/** The signed storage URL for a visible FileComponent's data in ftrack.server, or null. */
async function signedDownload(deps: DownloadDeps, actor: Actor, id: string | null): Promise<string | null> {
  if (id === null) return null;
  const component = deps.store.find('Component', [id]);
  if (!component || !actor.canRead(component)) return null;
  const placed = deps.store.withAttr('ComponentLocation', 'component_id', id).find((entry) => entry.attrs.location_id === SERVER_LOCATION_ID);
  const key = placed?.attrs.resource_identifier;
  if (typeof key !== 'string' || key === '') return null;
  return deps.serverLocation.downloadUrl(key, fileNameOf(component));
}

function fileNameOf(component: Entity): string {
  return `${String(component.attrs.name ?? 'file')}${String(component.attrs.file_type ?? '')}`;
}

function queryValue(req: Request, name: string): string | null {
  const value = req.query[name];
  return typeof value === 'string' && value.length <= maxQueryValue ? value : null;
}

function redirect(res: Response, location: string): void {
  // No Referer to storage: the page URL carried the key.
  res.set({ 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', Location: location }).status(302).end();
}

function plain(res: Response, status: number, message: string): void {
  res.status(status).set('Cache-Control', 'no-store').type('text/plain').send(message);
}

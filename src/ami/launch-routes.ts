import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { allActions, appliesTo, entityTypesText, findAction, type ActionDefinition } from '../actions/registry.ts';
import type { LaunchRecords } from '../actions/launch-record.ts';
import { recordLists } from '../actions/record-view.ts';
import { plainFormLimitFor, slotOf, uploadLimitFor } from '../actions/upload-limits.ts';
import type { Config } from '../config.ts';
import type { SelectedEntity, Selection, Tracker, UploadSlot } from '../trackers/tracker.ts';
import type { ByteBudget } from '../net/byte-budget.ts';
import { CSRF_FIELD, csrfToken, requireCsrfToken } from '../web/csrf.ts';
import { ERROR_CODES, HttpError } from '../web/errors.ts';
import { httpErrorFromSite } from '../web/site-errors.ts';
import { isContextId, type ActionContext, type ContextStore } from './context-store.ts';
import { defaultFormBodyLimits, readAmiForm, type FormBodyLimits } from './form-body.ts';
import { AmiPayloadError, parseAmiPayload, refuseLineForgery, type AmiFields, type AmiPayload } from './payload.ts';
import type { ReplayGuard } from './replay-guard.ts';
import { verifyAmiRequest } from './verify.ts';

// Flow 1, "Launch" (DESIGN.md): ShotGrid POSTs an Action Menu Item's form to /ami/<action>; the service reads it,
// verifies the signature, the timestamp window and that it was not seen before, parses it, stores an action
// context under an unguessable id and answers 303 to GET /ami/<action>/<id>. That page is reload-safe (a GET;
// the POST's signature could not be used twice anyway) and needs no cookie: the id in the URL is the capability,
// and forms on the page carry a CSRF token derived from it (src/web/csrf.ts).
//
//   POST /ami/:action                       launch: verify, remember, 303
//   GET  /ami/:action/:contextId            the action's page: the selection, looked up as the user
//   POST /ami/:action/:contextId/discard    forget the launch (CSRF-checked like every POST below a context)
//   GET  /ami/:action/:contextId/expiry     when the launch expires now (410 once it has)

export interface LaunchRouteDeps {
  config: Pick<Config, 'ami' | 'publicPath' | 'session' | 'maxUploadBytes' | 'thumbnailMaxBytes' | 'uploadParallelParts'>;
  tracker: Tracker;
  contexts: ContextStore;
  replay: ReplayGuard;
  /** Origins a launch may come from (the site's pages); a launch with no Origin, or "null", is let through. */
  allowedOrigins: readonly string[];
  /** The user's record of each action, shown on its page. */
  records?: LaunchRecords;
  /** What a discarded launch leaves undone is given up (its unfinished uploads, aborted at the site). */
  onDiscard?(context: ActionContext): Promise<void>;
  bodyLimits?: FormBodyLimits;
  /** The process's budget for buffered bodies (shared with the plain upload form). */
  bodyBudget?: ByteBudget;
}

const DISCARD = 'discard';

export function amiLaunchRoutes(deps: LaunchRouteDeps): Router {
  const router = express.Router();
  const csrfSecret = deps.config.session.secret.reveal();

  router.use('/ami/:action/:contextId', maskContextIdInLog);
  router.use('/ami/:action/:contextId/:purpose', requireCsrfToken(csrfSecret));

  router.post('/ami/:action', launchAction(deps));
  // Someone opened the item's URL in a browser: say what the address is for instead of a bare 404.
  router.get('/ami/:action', (req) => {
    const action = actionOf(req);
    throw new HttpError(405, 'ami_post_only', `This address is for ShotGrid's Action Menu Item “${action.title}”: ShotGrid posts the selection to it.`, {
      hint: "Run the action from ShotGrid's right-click menu. Administrators: set this address as the Action Menu Item's URL.",
      headers: { Allow: 'POST' },
    });
  });
  router.get('/ami/:action/:contextId', showActionPage(deps, csrfSecret));
  router.post(`/ami/:action/:contextId/${DISCARD}`, discardLaunch(deps));
  // When the page's lifetime ends (it slides while files move): asked by the page when the time it shows comes.
  router.get('/ami/:action/:contextId/expiry', async (req, res) => {
    const context = await contextOf(req, deps.contexts, actionOf(req));
    res.set('Cache-Control', 'no-store').json({ expiresAt: new Date(context.expiresAt).toISOString() });
  });
  return router;
}

// ---- POST /ami/:action ----

function launchAction(deps: LaunchRouteDeps): RequestHandler {
  const { config, contexts, tracker } = deps;
  return async (req, res) => {
    const action = actionOf(req);
    // Login CSRF: a page elsewhere could post someone's fresh signed request from a victim's browser and put the
    // victim on a launch acting as that someone. A real origin outside the site's is refused. What the site's own
    // POST carries is unconfirmed (a strict referrer policy makes browsers send "null"), so none or "null" passes,
    // logged, rather than refuse a genuine launch.
    const origin = req.get('origin') ?? null;
    if (origin !== null && origin !== 'null' && !deps.allowedOrigins.includes(origin)) {
      req.log.warn({ action: action.action, origin }, 'AMI launch refused: from another origin than the site');
      throw new HttpError(403, 'ami_origin_refused', `This launch came from a page at ${origin}, not from the ShotGrid site this service works with.`, {
        hint: "Run the action from ShotGrid's right-click menu. If your site is also reached under that name, ask your administrator to add it to AMI_ALLOWED_ORIGINS.",
      });
    }
    const fields = await readAmiForm(req, deps.bodyLimits ?? defaultFormBodyLimits, deps.bodyBudget);
    asPayloadError(() => refuseLineForgery(fields));

    const secret = config.ami.secrets[action.action];
    const verdict = await verifyAmiRequest(fields, {
      secrets: secret === null ? [] : [secret.reveal()],
      windowSeconds: config.ami.timestampWindowSeconds,
      acceptUnsigned: config.ami.acceptUnsigned,
      replay: deps.replay,
    });
    if (!verdict.ok) {
      // The verifier's message says why (how old, which variable to check) and holds no secret: for the operator.
      req.log.warn({ action: action.action, reason: verdict.reason, detail: verdict.message }, 'AMI request refused');
      throw refusal(verdict.reason, config.ami.timestampWindowSeconds);
    }

    const payload = parsePayload(fields);
    if (!appliesTo(action, tracker.roleOf(payload.entityType))) {
      throw new HttpError(
        400,
        ERROR_CODES.amiEntityTypeUnsupported,
        `“${action.title}” works on ${entityTypesText(action)}, not on ${payload.entityType}.`,
        {
          field: 'entity_type',
          hint: `Select ${entityTypesText(action)} in ShotGrid, or ask your administrator to offer this Action Menu Item only there.`,
        },
      );
    }

    const context = await contexts.create({
      action: action.action,
      siteUrl: tracker.siteUrl,
      // The AMI's numbers become the seam's strings here, once.
      user: { id: String(payload.user.id), login: payload.user.login },
      signed: verdict.signed,
      entityType: payload.entityType,
      selectedIds: payload.selectedIds.map(String),
      project: payload.project === null ? null : { id: String(payload.project.id), name: payload.project.name },
      title: payload.title,
    });
    const launched = {
      action: action.action,
      user: payload.user.login,
      entityType: payload.entityType,
      selected: payload.selectedIds.length,
      signed: verdict.signed,
      origin,
      ...(verdict.signed ? { skewSeconds: verdict.skewSeconds } : {}),
    };
    if (verdict.signed) req.log.info(launched, 'action launched');
    else req.log.warn(launched, 'action launched from an UNSIGNED request (AMI_ACCEPT_UNSIGNED): the user it names is taken on trust');

    res.set('Cache-Control', 'no-store');
    // Relative to where people reach the service (behind the proxy), never to where the request arrived.
    res.redirect(303, pagePath(config.publicPath, context));
  };
}

type RefusalReason = 'unsigned' | 'bad_signature' | 'bad_timestamp' | 'stale' | 'future' | 'replayed';

/** The answer to a request that failed verification: what happened and what to do, nothing that helps forging. */
function refusal(reason: RefusalReason, windowSeconds: number): HttpError {
  const startAgain = "Start the action again from ShotGrid's right-click menu.";
  switch (reason) {
    case 'unsigned':
      return new HttpError(401, ERROR_CODES.amiUnsigned, 'This request from ShotGrid is not signed, and the service accepts only signed requests.', {
        hint: "Ask your administrator to give the Action Menu Item the service's secret token.",
      });
    case 'bad_signature':
      return new HttpError(401, ERROR_CODES.amiSignatureInvalid, 'The signature of this request is not valid.', {
        hint: `${startAgain} If it keeps happening, the Action Menu Item's secret token and the service's differ: tell your administrator.`,
      });
    case 'bad_timestamp':
      return new HttpError(400, ERROR_CODES.amiPayloadInvalid, 'The timestamp of this request is not a valid time.', {
        field: 'timestamp',
      });
    case 'stale':
      return new HttpError(401, ERROR_CODES.amiTimestampOutsideWindow, `This request is too old: a launch must arrive within ${windowSeconds} seconds.`, {
        hint: `${startAgain} If it keeps happening, the clocks of ShotGrid and the service disagree: tell your administrator.`,
      });
    case 'future':
      return new HttpError(401, ERROR_CODES.amiTimestampOutsideWindow, "This request's time is ahead of the service's clock.", {
        hint: `${startAgain} If it keeps happening, the clocks of ShotGrid and the service disagree: tell your administrator.`,
      });
    case 'replayed':
      return new HttpError(401, ERROR_CODES.amiReplayed, 'This request was already used: each launch works once.', {
        hint: startAgain,
      });
  }
}

function parsePayload(fields: AmiFields): AmiPayload {
  return asPayloadError(() => parseAmiPayload(fields));
}

/** A malformed payload as the 400 page that names the field. */
function asPayloadError<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof AmiPayloadError)) throw error;
    throw new HttpError(400, ERROR_CODES.amiPayloadInvalid, error.message, {
      field: error.field,
      hint: "Start the action again from ShotGrid's right-click menu. If it keeps happening, tell your administrator.",
      cause: error,
    });
  }
}

// ---- GET /ami/:action/:contextId ----

function showActionPage(deps: LaunchRouteDeps, csrfSecret: string): RequestHandler {
  const { config, contexts, tracker } = deps;
  return async (req, res, next) => {
    const action = actionOf(req);
    // The download and review pages need more than the selection: their own routers render them.
    if (action.page === 'download' || action.page === 'review') {
      next();
      return;
    }
    const context = await contextOf(req, contexts, action);

    let selection: Selection;
    try {
      // As the launching user (sudo): their permissions decide what they see.
      // upload-files: each Version's movie now, so the page says what an upload would replace.
      selection = await tracker.lookupSelection(context.user.login, context.entityType, context.selectedIds, { withReviewMedia: action.action === 'upload-files' });
    } catch (error) {
      throw httpErrorFromSite(error, context.user.login);
    }

    const maxUploadBytes = uploadLimitFor(action.action, config);
    const plainFormMaxBytes = action.page === 'upload' ? await plainFormLimit(tracker, context, selection, slotOf(action.action), maxUploadBytes) : null;
    res.set('Cache-Control', 'no-store');
    res.render(action.page === 'upload' ? 'actions/upload' : 'ami/selection', {
      ...launchPageLocals(config.publicPath, csrfSecret, action, context, selection, tracker.typeLabel(context.entityType)),
      // The upload pages' API (src/actions/upload-routes.ts) and the no-JavaScript form.
      uploadApi: `${pagePath(config.publicPath, context)}/uploads`,
      uploadToken: csrfToken(csrfSecret, context.id, 'uploads'),
      formUploadAction: `${pagePath(config.publicPath, context)}/form-upload?${CSRF_FIELD}=${csrfToken(csrfSecret, context.id, 'form-upload')}`,
      maxUploadBytes,
      plainFormMaxBytes,
      parallelParts: config.uploadParallelParts,
      // set-thumbnail: where the page asks whether the new thumbnails are ready (src/actions/thumbnail-routes.ts).
      thumbnailsApi: `${pagePath(config.publicPath, context)}/thumbnails`,
      record: action.page === 'upload' ? await recordLists(deps.records, tracker, context, selection.visible) : null,
    });
  };
}

// ---- POST /ami/:action/:contextId/discard ----

function discardLaunch(deps: LaunchRouteDeps): RequestHandler {
  return async (req, res) => {
    const action = actionOf(req);
    const context = await contextOf(req, deps.contexts, action);
    await deps.contexts.delete(context.id);
    // After the delete: no new upload can begin under it meanwhile. A failure here is left to the sweeper.
    await deps.onDiscard?.(context).catch((error: unknown) => req.log.warn({ err: error }, 'what the discarded launch left could not all be given up'));
    req.log.info({ action: action.action, user: context.user.login }, 'launch discarded');
    res.set('Cache-Control', 'no-store');
    res.render('ami/discarded', { title: `${action.title} · ami-transfer`, action });
  };
}

// ---- shared ----

/**
 * What every action page shows of its launch: who, on which site, the selection, and how to discard it.
 * `typeLabel` is the selection's type as the site's users read it (Tracker.typeLabel).
 */
export function launchPageLocals(
  publicPath: string,
  csrfSecret: string,
  action: ActionDefinition,
  context: ActionContext,
  selection: Selection,
  typeLabel: string,
): Record<string, unknown> {
  return {
    title: `${action.title} · ami-transfer`,
    action,
    user: context.user,
    signed: context.signed,
    // The type as people read it, for words; its name at the site, for what a page's script decides by type.
    entityType: typeLabel,
    entityTypePlural: pluralOf(typeLabel),
    entityTypeName: context.entityType,
    project: context.project ?? sharedProject(selection.visible),
    siteHost: new URL(context.siteUrl).host,
    siteUrl: context.siteUrl,
    visible: selection.visible,
    hiddenCount: selection.hiddenIds.length,
    selectedCount: context.selectedIds.length,
    expiresAt: new Date(context.expiresAt).toISOString(),
    discardAction: `${pagePath(publicPath, context)}/${DISCARD}`,
    expiryUrl: `${pagePath(publicPath, context)}/expiry`,
    csrfField: CSRF_FIELD,
    discardToken: csrfToken(csrfSecret, context.id, DISCARD),
  };
}

/**
 * Without JavaScript, a file the form must hold whole has a limit of its own, which the page says when it is below
 * the action's. Null when there is none, or when the site cannot say now: the form's answer will, per file.
 */
async function plainFormLimit(tracker: Tracker, context: ActionContext, selection: Selection, slot: UploadSlot, maxUploadBytes: number | null): Promise<number | null> {
  const first = selection.visible[0];
  if (first === undefined) return null;
  try {
    const limit = await plainFormLimitFor(tracker, context.user.login, { type: first.type, id: first.id, slot });
    return limit !== null && (maxUploadBytes === null || limit < maxUploadBytes) ? limit : null;
  } catch {
    return null;
  }
}

export function actionOf(req: Request): ActionDefinition {
  const action = findAction(String(req.params['action']));
  if (action === undefined) {
    throw HttpError.notFound(`There is no action by that name. The actions are: ${allActions().map((a) => a.action).join(', ')}.`);
  }
  return action;
}

/** The launch behind the URL; expired, unknown and malformed ids all read the same, as a page that is gone. */
export async function contextOf(req: Request, contexts: ContextStore, action: ActionDefinition): Promise<ActionContext> {
  const id = String(req.params['contextId']);
  const context = isContextId(id) ? await contexts.get(id) : null;
  if (context === null) {
    throw new HttpError(410, ERROR_CODES.contextExpired, 'This page has expired — run the action again from {site}.', {
      hint: 'Select the entities in {site} and pick the action again from {menu}. A launch stays open for a limited time.',
    });
  }
  // A launch belongs to one action: its id under another action's address is nothing.
  if (context.action !== action.action) throw HttpError.notFound();
  return context;
}

export function pagePath(publicPath: string, context: ActionContext): string {
  return `${publicPath}/ami/${context.action}/${context.id}`;
}

/**
 * The context id in the path is a capability: the request log writes the path with it masked. Mounted on
 * /ami/:action/:contextId, so req.baseUrl ends with the id and req.path is what follows it.
 */
const maskContextIdInLog: RequestHandler = (req: Request, res: Response, next) => {
  const matched = req.baseUrl;
  const rest = req.path === '/' ? '' : req.path;
  res.locals.logPath = `${matched.slice(0, matched.lastIndexOf('/') + 1)}:contextId${rest.length > 256 ? `${rest.slice(0, 256)}…` : rest}`;
  next();
};

/** The project every visible entity shares, when the launch did not name one. */
export function sharedProject(entities: readonly SelectedEntity[]): { id: string; name: string | null } | null {
  const first = entities[0]?.project ?? null;
  if (first === null) return null;
  return entities.every((entity) => entity.project?.id === first.id) ? first : null;
}

/** "Versions", "Assets", "Entities": good enough for the sites' type names in a heading. */
function pluralOf(entityType: string): string {
  if (/[^aeiou]y$/i.test(entityType)) return `${entityType.slice(0, -1)}ies`;
  if (/(s|x|ch|sh)$/i.test(entityType)) return `${entityType}es`;
  return `${entityType}s`;
}

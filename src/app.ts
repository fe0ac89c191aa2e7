import ejs from 'ejs';
import express, { type Express, type RequestHandler } from 'express';
import type { ContextStore } from './ami/context-store.ts';
import { downloadRoutes } from './actions/download-routes.ts';
import { reviewRoutes } from './actions/review-routes.ts';
import type { LaunchRecords } from './actions/launch-record.ts';
import type { ReviewSubmissions } from './actions/review-submissions.ts';
import { thumbnailRoutes } from './actions/thumbnail-routes.ts';
import { uploadRoutes } from './actions/upload-routes.ts';
import { amiLaunchRoutes } from './ami/launch-routes.ts';
import { limitPerUser } from './web/rate-limit.ts';
import { formatBytes } from './shared/format-bytes.ts';
import { ByteBudget } from './net/byte-budget.ts';
import { cutIdleClients, limitRequestsPerClient } from './web/client-idle.ts';
import type { ReplayGuard } from './ami/replay-guard.ts';
import type { Config } from './config.ts';
import { requestLogging, type Logger } from './log.ts';
import { publicDir, viewsDir } from './paths.ts';
import type { KeyValueStore } from './store/key-value-store.ts';
import type { Tracker } from './trackers/tracker.ts';
import type { UploadSessions } from './transfer/upload-session.ts';
import { errorHandler, notFoundHandler } from './web/errors.ts';
import { healthRoutes, type Readiness } from './web/health.ts';
import type { Outbound } from './net/outbound.ts';
import { countTransfers } from './web/transfer-metrics.ts';
import { homePage } from './web/home.ts';
import { sharedScript } from './web/shared-scripts.ts';
import { resolveFrameAncestors, securityHeaders } from './web/security-headers.ts';
import { hubLaunchRoutes, type HubLaunches } from './ami/hub-launches.ts';

// The Express app, assembled top-down so the order of middleware reads as what happens to a request.
// No I/O here: everything the app talks to arrives in `deps`, so tests build the real app around fakes.

export interface AppDeps {
  config: Config;
  log: Logger;
  /** The tracking site in use (the configured one, or the sandbox's in sandbox mode), through the service's script. */
  tracker: Tracker;
  /** Launched actions, under their unguessable ids. */
  contexts: ContextStore;
  /** Signatures already used, so a captured AMI request cannot be replayed. */
  replay: ReplayGuard;
  /** The shared key-value store (memory or Redis): download progress. */
  store: KeyValueStore;
  /** Uploads driven by the action pages, their state in the shared store. */
  uploads: UploadSessions;
  /** submit-for-review's new Versions, per launch, in the shared store. */
  submissions: ReviewSubmissions;
  /** Each user's record of what each action did, in the shared store. */
  records?: LaunchRecords;
  /** In sandbox mode: the sandbox's right-click menu page, linked from the home page and allowed to frame us. */
  sandboxMenuUrl?: string | undefined;
  /** Origins thumbnails may load from besides https: hosts (the sandbox's plain-http storage). */
  imageOrigins?: readonly string[];
  /** What /readyz reports: the site and the store, checked now and then; the server says when shutdown starts. */
  readiness: Readiness;
  /** How storage and web links are reached (the outbound proxy); direct when absent. */
  outbound?: Outbound;
  /** With ftrack: launches from its event hub, redeemed once at /ftrack/launch/<token>. */
  hubLaunches?: HubLaunches;
}

export function createApp(deps: AppDeps): Express {
  const { config, log } = deps;
  const app = express();

  app.set('env', config.nodeEnv);
  // Client address and protocol come from X-Forwarded-* only across this many proxies.
  app.set('trust proxy', config.trustProxy);
  app.disable('x-powered-by');
  useEjsViews(app, config.production);

  // 1. Every request gets an id and a log line.
  app.use(requestLogging(log, { quietPaths: [`${config.basePath}/healthz`, `${config.basePath}/readyz`] }));
  app.use(countTransfers(config.basePath));
  // 1b. No client holds more than its share: requests in flight per address, and no time spent waiting on it.
  app.use(limitRequestsPerClient(config.maxRequestsPerClient));
  app.use(cutIdleClients(config.clientIdleSeconds * 1000));
  // 2. Security headers, framing allowed only to the site (ShotGrid's modal overlay).
  const frameAncestors = resolveFrameAncestors(config.frameAncestors, [deps.tracker.siteUrl, ...(deps.sandboxMenuUrl === undefined ? [] : [deps.sandboxMenuUrl])]);
  app.use(
    securityHeaders({
      frameAncestors,
      https: config.publicUrl.startsWith('https:'),
      imageOrigins: deps.imageOrigins ?? [],
    }),
  );
  // 3. What every page needs to build its links: the public path prefix (the proxy may strip or keep it).
  app.use(pageLocals(config.publicPath, deps.tracker));
  // 4. The service, under its base path.
  app.use(config.basePath === '' ? '/' : config.basePath, serviceRoutes(deps, frameAncestors));
  // 5. Nothing matched: 404; then every error becomes a page or JSON.
  app.use(notFoundHandler());
  app.use(errorHandler({ basePath: config.basePath, publicPath: config.publicPath }));

  return app;
}

function serviceRoutes(deps: AppDeps, frameAncestors: readonly string[]): express.Router {
  const router = express.Router();
  // What the process holds of buffered bodies at once (held form parts, launch forms), whatever clients send.
  const heldBytes = new ByteBudget(deps.config.heldBytesMiB * 1024 * 1024);
  // Our own CSS and scripts; nothing is loaded from the internet.
  router.get('/public/js/match-files.js', sharedScript('match-files'));
  router.get('/public/js/image-signature.js', sharedScript('image-signature'));
  router.get('/public/js/format-bytes.js', sharedScript('format-bytes'));
  router.get('/public/js/text-signature.js', sharedScript('text-signature'));
  router.get('/public/js/abortable-sleep.js', sharedScript('abortable-sleep'));
  router.use('/public', express.static(publicDir, { index: false, redirect: false }));
  router.get('/', homePage({ sandboxMenuUrl: deps.sandboxMenuUrl }));
  router.use(healthRoutes(deps.readiness));
  // Every request under a launch counts against its user's rate (in the store: across instances).
  router.use('/ami/:action/:contextId', limitPerUser({ store: deps.store, contexts: deps.contexts, perMinute: deps.config.rateLimitPerMinute }));
  // The Action Menu Item endpoints: POST /ami/<action> launches, GET /ami/<action>/<context> is the action's page.
  router.use(
    amiLaunchRoutes({
      config: deps.config,
      // Where launches may come from: the site's pages (by default those allowed to frame ours), 'self' being us.
      allowedOrigins: (deps.config.amiAllowedOrigins ?? frameAncestors).map((source) => (source === "'self'" ? new URL(deps.config.publicUrl).origin : source)),
      onDiscard: async (context) => void (await deps.uploads.abortLaunch(context.id)),
      // Launch forms past their first 64 KiB have a budget of their own: a flood of them never holds up uploads.
      bodyBudget: new ByteBudget(64 * 1024 * 1024),
      tracker: deps.tracker,
      contexts: deps.contexts,
      replay: deps.replay,
      ...(deps.records ? { records: deps.records } : {}),
    }),
  );
  // ftrack's Actions menu opens a one-time link that becomes a launch like the one above (ami/hub-launches.ts).
  if (deps.hubLaunches) {
    router.use(hubLaunchRoutes({ launches: deps.hubLaunches, contexts: deps.contexts, publicPath: deps.config.publicPath, siteName: deps.tracker.siteName }));
  }
  // The download page and its zip (download-zip).
  router.use(
    downloadRoutes({
      config: deps.config,
      tracker: deps.tracker,
      contexts: deps.contexts,
      store: deps.store,
      ...(deps.records ? { records: deps.records } : {}),
      ...(deps.outbound ? { outbound: deps.outbound } : {}),
    }),
  );
  // The upload API under a launch's page (upload-files, attach-files, set-thumbnail, submit-for-review).
  router.use(
    uploadRoutes({
      config: deps.config,
      tracker: deps.tracker,
      contexts: deps.contexts,
      uploads: deps.uploads,
      formParallelParts: deps.config.uploadParallelParts,
      heldBytes,
      ...(deps.outbound ? { storageDispatcher: deps.outbound.storage } : {}),
      maxUploadBytes: deps.config.maxUploadBytes,
      thumbnailMaxBytes: deps.config.thumbnailMaxBytes,
      createdVersions: deps.submissions,
      ...(deps.records ? { records: deps.records } : {}),
    }),
  );
  // set-thumbnail: whether the new thumbnails are made yet.
  router.use(thumbnailRoutes({ tracker: deps.tracker, contexts: deps.contexts }));
  // submit-for-review: its page, its new Versions, its playlist.
  router.use(reviewRoutes({ config: deps.config, tracker: deps.tracker, contexts: deps.contexts, submissions: deps.submissions, ...(deps.records ? { records: deps.records } : {}) }));
  return router;
}

/** EJS templates from views/; compiled templates are cached in production. Pages include header/footer partials. */
export function useEjsViews(app: Express, cache: boolean): void {
  app.set('views', viewsDir);
  app.set('view engine', 'ejs');
  app.set('view cache', cache);
  app.engine('ejs', (path, data, done) => {
    ejs.renderFile(path, data as ejs.Data, { cache }, done);
  });
}

function pageLocals(publicPath: string, site: Pick<Tracker, 'siteName' | 'actionMenu' | 'typeLabel'>): RequestHandler {
  return (_req, res, next) => {
    res.locals['base'] = publicPath;
    // "ShotGrid" or "ftrack" wherever a page names the site, and where its users pick an action (the pages'
    // scripts read both from <html>; error texts fill {site} and {menu} with them).
    res.locals['siteName'] = site.siteName;
    res.locals['actionMenu'] = site.actionMenu;
    res.locals['typeLabel'] = (entityType: string) => site.typeLabel(entityType);
    // One way of writing sizes on every page, the same as the pages' scripts (src/shared/format-bytes.ts).
    res.locals['formatBytes'] = formatBytes;
    next();
  };
}

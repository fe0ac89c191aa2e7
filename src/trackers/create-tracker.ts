import type { Dispatcher } from 'undici';
import type { Logger } from '../log.ts';
import { FtrackTracker } from './ftrack/tracker.ts';
import { FtrackUsers } from './ftrack/users.ts';
import type { SiteUsers } from './site-users.ts';
import { ShotgridTracker } from './shotgrid/tracker.ts';
import type { Tracker } from './tracker.ts';

// The one place that turns a site's settings into its adapter: the rest of the service holds a Tracker and never
// names a site kind (test/architecture.test.ts).

export interface ShotgridSettings {
  kind: 'shotgrid';
  siteUrl: string;
  scriptName: string;
  scriptKey: string;
  /** The Version field that holds its movie (UPLOAD_VERSION_FIELD). */
  reviewMediaField: string;
  /** API requests in flight at once (SITE_MAX_CONCURRENT_REQUESTS). */
  maxConcurrentRequests: number;
}

export interface FtrackSettings {
  kind: 'ftrack';
  /** https://studio.ftrackapp.com */
  serverUrl: string;
  /** The service's API user, and the site's API key (System settings → API keys): it acts as the user it names. */
  apiUser: string;
  apiKey: string;
  /** API requests in flight at once, downloads' redirects included (SITE_MAX_CONCURRENT_REQUESTS). */
  maxConcurrentRequests: number;
}

export type TrackerSettings = ShotgridSettings | FtrackSettings;

export function createTracker(settings: TrackerSettings, options: { log: Logger; dispatcher?: Dispatcher }): Tracker {
  switch (settings.kind) {
    case 'shotgrid':
      return new ShotgridTracker({
        siteUrl: settings.siteUrl,
        scriptName: settings.scriptName,
        scriptKey: settings.scriptKey,
        reviewMediaField: settings.reviewMediaField,
        maxConcurrentRequests: settings.maxConcurrentRequests,
        log: options.log.child({ component: 'shotgrid' }),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
    case 'ftrack':
      return new FtrackTracker({
        serverUrl: settings.serverUrl,
        apiUser: settings.apiUser,
        apiKey: settings.apiKey,
        maxConcurrentRequests: settings.maxConcurrentRequests,
        log: options.log.child({ component: 'ftrack' }),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
  }
}

/** The site's users by login, for an entry that learns only a name (ftrack's event hub); null where not needed. */
export function siteUsersOf(tracker: Tracker): SiteUsers | null {
  return tracker instanceof FtrackTracker ? new FtrackUsers(tracker.api) : null;
}

import { isNetworkError } from '../net/network-errors.ts';
import { TrackerError } from '../trackers/tracker-error.ts';
import { ERROR_CODES, HttpError } from './errors.ts';

// What a page says when the tracking site fails it, acting as a user. A site that is down or unreachable is a
// 502 with a retry link (the page is a GET, so retrying is safe); a site that refuses to act as the user (sudo
// refused: an inactive or unknown login) is a 403 that says so. The site's own error titles are kept for people;
// they never carry tokens.

export function httpErrorFromSite(error: unknown, login: string): unknown {
  if (error instanceof HttpError) return error;
  if (error instanceof TrackerError) {
    const site = error.siteName;
    switch (error.kind) {
      case 'auth':
      case 'permission':
        return new HttpError(403, ERROR_CODES.siteRefusedUser, `The ${site} site refused to act as “${login}”.`, {
          hint: `The account may be inactive, or the service's API user may not be allowed to act for people. Ask your ${site} administrator.`,
          cause: error,
        });
      case 'not_found':
      case 'bad_request':
        return new HttpError(502, ERROR_CODES.siteRefusedRequest, `The ${site} site refused the request: ${error.message}`, {
          hint: 'Try again. If it keeps happening, tell your administrator, with the request id below.',
          cause: error,
        });
      case 'rate_limited':
      case 'unavailable':
      case 'network':
      case 'protocol':
        return HttpError.siteUnreachable(`The ${site} site did not answer.`, {
          ...(error.retryAfterMs === undefined ? {} : { headers: { 'Retry-After': String(Math.ceil(error.retryAfterMs / 1000)) } }),
          cause: error,
        });
    }
  }
  if (isNetworkError(error)) return HttpError.siteUnreachable('The {site} site did not answer.', { cause: error });
  return error;
}

/**
 * What a page says when the site refuses a change the user asked for (create a Version, fill a Playlist): their
 * permissions (403), or something the site would not take or could not find (422). The site's own words are kept;
 * everything else reads as in httpErrorFromSite.
 */
export function httpErrorFromSiteChange(error: unknown, login: string, what: string): unknown {
  if (error instanceof TrackerError && (error.kind === 'permission' || error.kind === 'bad_request' || error.kind === 'not_found')) {
    return new HttpError(error.kind === 'permission' ? 403 : 422, ERROR_CODES.siteRefusedChange, `${error.siteName} did not let “${login}” ${what}: ${error.message}`, {
      hint: `Check in ${error.siteName} that you may do this in the project, or ask your ${error.siteName} administrator.`,
      cause: error,
    });
  }
  return httpErrorFromSite(error, login);
}

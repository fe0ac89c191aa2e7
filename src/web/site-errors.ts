import { isNetworkError, ShotgridError } from '../trackers/shotgrid/errors.ts';
import { ERROR_CODES, HttpError } from './errors.ts';

// What a page says when the tracking site fails it, acting as a user. A site that is down or unreachable is a
// 502 with a retry link (the page is a GET, so retrying is safe); a site that refuses to act as the user (sudo
// refused: an inactive or unknown login) is a 403 that says so. ShotGrid's own error titles are kept for people;
// they never carry tokens.

export function httpErrorFromSite(error: unknown, login: string): unknown {
  if (error instanceof HttpError) return error;
  if (error instanceof ShotgridError) {
    switch (error.kind) {
      case 'auth':
      case 'permission':
        return new HttpError(403, ERROR_CODES.siteRefusedUser, `The ShotGrid site refused to act as “${login}”.`, {
          hint: "The account may be inactive, or the service's API script may not be allowed to act for people. Ask your ShotGrid administrator.",
          cause: error,
        });
      case 'not_found':
      case 'bad_request':
        return new HttpError(502, ERROR_CODES.siteRefusedRequest, `The ShotGrid site refused the request: ${error.message}`, {
          hint: 'Try again. If it keeps happening, tell your administrator, with the request id below.',
          cause: error,
        });
      case 'rate_limited':
      case 'unavailable':
      case 'network':
      case 'protocol':
        return HttpError.siteUnreachable('The ShotGrid site did not answer.', {
          ...(error.retryAfterMs === undefined ? {} : { headers: { 'Retry-After': String(Math.ceil(error.retryAfterMs / 1000)) } }),
          cause: error,
        });
    }
  }
  if (isNetworkError(error)) return HttpError.siteUnreachable('The ShotGrid site did not answer.', { cause: error });
  return error;
}

// What went wrong talking to a tracking site, whatever site it is: a stable kind the service acts on (retry or
// not) and maps to a page or JSON error once (src/web/site-errors.ts). Each adapter throws its own subclass, with
// the site's own words kept for people and never a token.

export type TrackerErrorKind =
  | 'auth' // bad service credentials, or the site refused to act as the user
  | 'permission' // the user may not do this
  | 'not_found' // no such record (or not visible to the user)
  | 'bad_request' // the site refused the request as sent
  | 'rate_limited' // the site asks to slow down
  | 'unavailable' // the site failed (5xx)
  | 'network' // no answer at all
  | 'protocol'; // an answer that is not what the site's API documents

export class TrackerError extends Error {
  readonly kind: TrackerErrorKind;
  /** The HTTP status the site answered, when it answered. */
  readonly status: number | null;
  readonly retryAfterMs: number | undefined;
  /** The site's product as its users name it ("ShotGrid", "ftrack"), for the words of the error page. */
  readonly siteName: string;

  constructor(kind: TrackerErrorKind, message: string, details: { status?: number; retryAfterMs?: number; cause?: unknown; siteName?: string } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TrackerError';
    this.kind = kind;
    this.status = details.status ?? null;
    this.retryAfterMs = details.retryAfterMs;
    this.siteName = details.siteName ?? 'tracking';
  }
}

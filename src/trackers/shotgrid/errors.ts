import { parseRetryAfter } from '../../net/retry-policy.ts';
import { TrackerError, type TrackerErrorKind } from '../tracker-error.ts';

// What went wrong talking to a ShotGrid site, in terms the service can act on: whether a retry may help, and a
// stable kind that maps to a page or JSON error. ShotGrid's own title is kept for people; tokens never are.

/** ShotGrid's statuses as kinds: 400/401 code 102 auth (bad script credentials, refused sudo), 403 permission,
 * 404 not_found, other 4xx bad_request, 429 rate_limited, 5xx unavailable. */
export type ShotgridErrorKind = TrackerErrorKind;

export class ShotgridError extends TrackerError {
  /** ShotGrid's error code (102, 103, 104, …) when the site sent one. */
  readonly code: number | null;

  constructor(kind: ShotgridErrorKind, message: string, details: { status?: number; code?: number | null; retryAfterMs?: number; cause?: unknown } = {}) {
    super(kind, message, { ...details, siteName: 'ShotGrid' });
    this.name = 'ShotgridError';
    this.code = details.code ?? null;
  }
}

/** Turns a non-2xx API answer into a ShotgridError; the body may be ShotGrid's JSON or a proxy's HTML. */
export function errorFromResponse(status: number, headers: Record<string, string | string[] | undefined>, body: string): ShotgridError {
  let title = `HTTP ${status}`;
  let code: number | null = null;
  try {
    const first = (JSON.parse(body) as { errors?: { title?: unknown; code?: unknown }[] }).errors?.[0];
    if (typeof first?.title === 'string') title = first.title;
    if (typeof first?.code === 'number') code = first.code;
  } catch {
    // Not JSON: a proxy or load balancer answered; the status says enough.
  }
  const details = { status, code, ...optionalRetryAfter(headers['retry-after']) };
  if (status === 429) return new ShotgridError('rate_limited', `The site asks to slow down: ${title}`, details);
  if (status >= 500) return new ShotgridError('unavailable', `The site is unavailable (${status}): ${title}`, details);
  if (status === 401 || code === 102) return new ShotgridError('auth', title, details);
  if (status === 403) return new ShotgridError('permission', title, details);
  if (status === 404) return new ShotgridError('not_found', title, details);
  return new ShotgridError('bad_request', title, details);
}

function optionalRetryAfter(value: string | string[] | undefined): { retryAfterMs?: number } {
  const ms = parseRetryAfter(value);
  return ms === undefined ? {} : { retryAfterMs: ms };
}

// Re-exported for the ShotGrid client's callers; the check itself is neutral (src/net/network-errors.ts).
export { isNetworkError } from '../../net/network-errors.ts';

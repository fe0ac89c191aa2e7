import { parseRetryAfter } from '../../transfer/retry-policy.ts';

// What went wrong talking to a ShotGrid site, in terms the service can act on: whether a retry may help, and a
// stable kind that maps to a page or JSON error. ShotGrid's own title is kept for people; tokens never are.

export type ShotgridErrorKind =
  | 'auth' // bad script credentials, refused sudo (400/401 code 102)
  | 'permission' // 403
  | 'not_found' // 404
  | 'bad_request' // 400 and other 4xx
  | 'rate_limited' // 429
  | 'unavailable' // 5xx
  | 'network' // no HTTP answer at all
  | 'protocol'; // an answer that is not what the API documents

export class ShotgridError extends Error {
  readonly kind: ShotgridErrorKind;
  readonly status: number | null;
  /** ShotGrid's error code (102, 103, 104, …) when the site sent one. */
  readonly code: number | null;
  readonly retryAfterMs: number | undefined;

  constructor(kind: ShotgridErrorKind, message: string, details: { status?: number; code?: number | null; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ShotgridError';
    this.kind = kind;
    this.status = details.status ?? null;
    this.code = details.code ?? null;
    this.retryAfterMs = details.retryAfterMs;
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

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Whether an exception is a transport failure (reset, refused, timeout) rather than a programming error. */
export function isNetworkError(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  }
  return false;
}

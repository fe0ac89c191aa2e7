import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import { ERROR_CODES, HttpError } from './errors.ts';

// Stateless CSRF tokens for the forms of an action's pages. The pages need no cookie (ShotGrid's modal is a
// cross-site iframe, where browsers may drop cookies), so there is no session to keep a token in. Instead the
// token is derived: HMAC-SHA256(SESSION_SECRET, "<context id>:<purpose>"). The context id is the capability in
// the page's URL; the token proves the POST came from a page the service rendered for that context and that form,
// and a token for one form (or one launch) is worthless for another. See docs/decisions/0002-context-token.md.

/** The form field that carries the token; a script may send the X-CSRF-Token header instead. */
export const CSRF_FIELD = 'csrf_token';
const CSRF_HEADER = 'x-csrf-token';

/** The token for one form (`purpose`, e.g. "discard") of one action context. */
export function csrfToken(secret: string, contextId: string, purpose: string): string {
  return createHmac('sha256', secret).update(`${contextId}:${purpose}`, 'utf8').digest('base64url');
}

/** Whether `given` is the token for this context and purpose, compared in constant time. */
export function isValidCsrfToken(secret: string, contextId: string, purpose: string, given: unknown): boolean {
  if (typeof given !== 'string' || given.length > 128) return false;
  const expected = Buffer.from(csrfToken(secret, contextId, purpose), 'utf8');
  const received = Buffer.from(given, 'utf8');
  // The length of a valid token is public (43 characters); only the content must not leak through timing.
  return received.length === expected.length && timingSafeEqual(received, expected);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Forms that change state are small; the limit keeps a forged one from costing us memory. */
const FORM_LIMIT = '16kb';

/**
 * Refuses every state-changing request under `/…/:contextId/<purpose>` whose token is missing or wrong, before
 * any handler runs, so a refused request changes nothing. Mount it where the route has `contextId` and
 * `purpose` params. The token comes from the X-CSRF-Token header, for plain form posts from the urlencoded body
 * (which is parsed here, and left in `req.body` for the handler), and for multipart forms from the query.
 */
export function requireCsrfToken(secret: string): RequestHandler[] {
  const parseForm = express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 50 });
  const check: RequestHandler = (req, _res, next) => {
    if (SAFE_METHODS.has(req.method)) {
      next();
      return;
    }
    const { contextId, purpose } = req.params as { contextId?: string; purpose?: string };
    const body: unknown = req.body;
    // A streamed multipart form cannot be read ahead for its token field: it carries the token in its action URL.
    const fromQuery = req.is('multipart/form-data') ? req.query[CSRF_FIELD] : undefined;
    const given = req.get(CSRF_HEADER) ?? (isRecord(body) ? body[CSRF_FIELD] : undefined) ?? fromQuery;
    if (contextId === undefined || purpose === undefined || !isValidCsrfToken(secret, contextId, purpose, given)) {
      next(
        new HttpError(403, ERROR_CODES.csrfInvalid, 'This form is out of date or did not come from this page, so nothing was changed.', {
          hint: 'Reload the page and try again, or start the action again from {menu}.',
        }),
      );
      return;
    }
    next();
  };
  const parseUnlessSafe: RequestHandler = (req, res, next) => {
    if (SAFE_METHODS.has(req.method) || req.get(CSRF_HEADER) !== undefined) next();
    else parseForm(req, res, next);
  };
  return [parseUnlessSafe, check];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { StoreUnavailableError } from '../store/store-unavailable.ts';

// The one place where errors become HTTP answers. Handlers throw an HttpError (or anything else, which becomes a
// 500 that says nothing of its insides); this answers JSON to clients that want JSON and a page to people, and
// logs the error with the request id. Pages and bodies never carry a stack, a token or a signature: only the
// message an HttpError was given for people.

export interface HttpErrorOptions {
  /** The form field or parameter at fault, for 400s. */
  field?: string;
  /** What the person can do about it; the page shows a sensible default per status when not given. */
  hint?: string;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Readonly<Record<string, string>>;
  cause?: unknown;
}

export class HttpError extends Error {
  readonly status: number;
  /** Stable, machine-readable: clients switch on it (bad_request, not_found, site_unreachable…). */
  readonly code: string;
  readonly field: string | undefined;
  readonly hint: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.field = options.field;
    this.hint = options.hint;
    this.headers = options.headers ?? {};
  }

  static badRequest(message: string, options: HttpErrorOptions = {}): HttpError {
    return new HttpError(400, ERROR_CODES.badRequest, message, options);
  }

  static notFound(message = 'There is nothing at this address.', options: HttpErrorOptions = {}): HttpError {
    return new HttpError(404, ERROR_CODES.notFound, message, options);
  }

  static siteUnreachable(message = 'The {site} site did not answer.', options: HttpErrorOptions = {}): HttpError {
    return new HttpError(502, ERROR_CODES.siteUnreachable, message, options);
  }
}

/**
 * The stable codes clients switch on, named once. Generic ones come from a status alone (codeForStatus below);
 * the others say exactly which check refused the request.
 */
export const ERROR_CODES = {
  badRequest: 'bad_request',
  notFound: 'not_found',
  bodyTooLarge: 'body_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  siteUnreachable: 'site_unreachable',
  /** The site refused to act as the launching user (sudo refused: an inactive or unknown login). */
  siteRefusedUser: 'site_refused_user',
  /** The site refused a request the service made (a 4xx other than permissions), e.g. an unknown entity type. */
  siteRefusedRequest: 'site_refused_request',
  /** The site refused a change the user asked for: their permissions, or a value it would not take. */
  siteRefusedChange: 'site_refused_change',
  /** An AMI POST whose signature does not match its fields and the action's secret token. */
  amiSignatureInvalid: 'ami_signature_invalid',
  /** A signed AMI POST whose `timestamp` is older (or newer) than the window allows. */
  amiTimestampOutsideWindow: 'ami_timestamp_outside_window',
  /** A signed AMI POST seen before within the window. */
  amiReplayed: 'ami_replayed',
  /** An AMI POST without a signature, while unsigned requests are not accepted. */
  amiUnsigned: 'ami_unsigned',
  /** An AMI POST with a missing or malformed field (named in `field`). */
  amiPayloadInvalid: 'ami_payload_invalid',
  /** The action does not apply to the selected entity type. */
  amiEntityTypeUnsupported: 'ami_entity_type_unsupported',
  /** The action context in the URL is malformed, unknown or expired. */
  contextExpired: 'context_expired',
  /** A state-changing form came without the right CSRF token. */
  csrfInvalid: 'csrf_invalid',
  /** The shared store (Redis) does not answer: every instance shares the outage; nothing stored is lost. */
  storeUnavailable: 'store_unavailable',
} as const;

/** Codes for errors that arrive with only a status (from body parsers, static files and the like). */
const codeForStatus: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  409: 'conflict',
  410: 'gone',
  413: ERROR_CODES.bodyTooLarge,
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  429: 'too_many_requests',
  500: 'internal_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
};

/** See siteWords for {site} and {menu}. */
const defaultHints: Readonly<Record<number, string>> = {
  400: 'Check what was sent and try again.',
  401: 'Start the action again from {menu}.',
  403: 'Ask your {site} administrator for access.',
  404: 'Check the address, or start again from {menu}.',
  410: 'Run the action again from {menu}.',
  413: 'Send less at once, or ask your administrator about the size limit.',
  415: 'Send the form as application/x-www-form-urlencoded or multipart/form-data.',
  429: 'Wait a moment, then try again.',
  500: 'Try again. If it keeps happening, give your administrator the request id below.',
  502: 'Try again in a minute. If the site stays unreachable, tell your administrator.',
  503: 'Try again in a minute.',
  504: 'Try again in a minute.',
};

/** Any thrown value as an HttpError that is safe to show: unknown errors become a plain 500. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof StoreUnavailableError) return storeUnavailable(error);
  const { status, statusCode, expose } = (error ?? {}) as { status?: unknown; statusCode?: unknown; expose?: unknown };
  const given = typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : 500;
  const known = given >= 400 && given <= 599 ? given : 500;
  // http-errors (used by Express's body parsers) marks which messages are meant for clients.
  const message =
    known < 500 && expose === true && error instanceof Error
      ? error.message
      : known === 500
        ? 'Something went wrong on our side.'
        : (STATUS_CODES[known] ?? 'Error');
  return new HttpError(known, codeForStatus[known] ?? (known < 500 ? 'bad_request' : 'internal_error'), sentence(message), {
    cause: error,
  });
}

/**
 * The store's outage as people and scripts meet it: 503 with a stable code and a Retry-After the pages wait out
 * (they retry 503s), so an upload carries on by itself once the store answers again.
 */
function storeUnavailable(error: StoreUnavailableError): HttpError {
  return new HttpError(503, ERROR_CODES.storeUnavailable, 'The service cannot reach its shared store right now, so it cannot carry on with this.', {
    hint: 'Try again in a minute: what you started is kept, and uploads carry on where they stopped. If it lasts, tell your administrator that the service’s Redis is not answering.',
    headers: { 'Retry-After': '5' },
    cause: error,
  });
}

/** Ends the middleware chain: whatever no route answered is a 404. */
export function notFoundHandler(): RequestHandler {
  return (_req, _res, next) => {
    next(HttpError.notFound());
  };
}

export interface ErrorHandlerOptions {
  /** Where routes are mounted (to tell /api paths). */
  basePath: string;
  /** Where people reach the service (for the retry link on the page). */
  publicPath: string;
}

export function errorHandler(options: ErrorHandlerOptions): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const httpError = toHttpError(error);
    // The request's own log line carries the code; the error itself matters when it is ours (5xx).
    res.locals.errorCode = httpError.code;
    // Error for what is broken (ours), warn for what a TD should look at (the site or storage failing), info for
    // what users do (a pause or a closed tab cutting a request), debug for refusals the answer explains.
    if (req.destroyed || req.socket.destroyed) req.log.info({ code: httpError.code }, 'request ended by the client');
    else if (httpError.status === 500) req.log.error({ err: error, code: httpError.code }, 'request error');
    else if (httpError.status >= 500) req.log.warn({ err: error, code: httpError.code }, 'request failed upstream');
    else req.log.debug({ err: error, code: httpError.code }, 'request refused');

    if (res.headersSent) {
      // Part of a body is out (a streamed download): cut the connection so the client never sees it as complete.
      res.destroy();
      return;
    }

    res.status(httpError.status);
    res.set({ 'Cache-Control': 'no-store', ...httpError.headers });
    const pathInside = pathInsideBase(req, options.basePath);

    const message = siteWords(httpError.message, res);
    const hint = siteWords(httpError.hint ?? defaultHints[httpError.status] ?? defaultHints[httpError.status < 500 ? 400 : 500], res);
    if (wantsJson(req, pathInside)) {
      res.json({
        error: {
          code: httpError.code,
          message,
          ...(httpError.field === undefined ? {} : { field: httpError.field }),
          // What to do about it, for pages that show the error themselves.
          ...(httpError.hint === undefined ? {} : { hint }),
        },
      });
      return;
    }

    const retryable = httpError.status >= 500 && (req.method === 'GET' || req.method === 'HEAD');
    const page = {
      title: `${httpError.status} ${STATUS_CODES[httpError.status] ?? 'Error'}`,
      status: httpError.status,
      code: httpError.code,
      message,
      field: httpError.field,
      hint,
      requestId: req.id,
      retryHref: retryable ? options.publicPath + pathInside : undefined,
    };
    res.render('error', page, (renderError: Error | null, html: string) => {
      if (renderError) {
        req.log.error({ err: renderError }, 'error page failed to render');
        res.type('text/plain').send(`${page.title}\n${page.message}\n${page.hint ?? ''}\nRequest id: ${page.requestId}\n`);
        return;
      }
      res.type('html').send(html);
    });
  };
}

/**
 * The service's own texts name the site the service works with through two words, filled here from the page
 * locals: {site} ("ShotGrid", "ftrack") and {menu} (where its users pick an action: "ShotGrid's right-click menu").
 */
function siteWords<T extends string | undefined>(text: T, res: Response): T {
  if (text === undefined) return text;
  const local = (name: string, fallback: string): string => (typeof res.locals[name] === 'string' ? (res.locals[name] as string) : fallback);
  return text.replaceAll('{site}', local('siteName', 'the site')).replaceAll('{menu}', local('actionMenu', "the site's menu of actions")) as T;
}

/** JSON for API paths and for clients whose Accept prefers JSON over HTML; a page otherwise. */
function wantsJson(req: Request, pathInside: string): boolean {
  if (pathInside === '/api' || pathInside.startsWith('/api/')) return true;
  return req.accepts(['html', 'json']) === 'json';
}

/** The request's URL (path and query) below the base path; the whole URL when it is outside. */
function pathInsideBase(req: Request, basePath: string): string {
  const url = req.originalUrl;
  if (basePath === '' || !url.startsWith(basePath)) return url;
  const rest = url.slice(basePath.length);
  if (rest === '' || rest.startsWith('?')) return `/${rest}`;
  return rest.startsWith('/') ? rest : url;
}

function sentence(text: string): string {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

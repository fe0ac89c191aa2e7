import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';

// JSON logs that are safe to ship anywhere. Rather than a list of known paths (pino's `redact`), every log line is
// scrubbed as a whole: a field whose name says it holds a secret is replaced at any depth, and secrets inside text
// (a signed storage URL in an error message, a Bearer header copied into a string) are masked where they appear.
// Errors are logged by type, message and code: never with their stack, which can carry request data.

export type { Logger } from 'pino';

const REDACTED = '[redacted]';

/** Field names that hold secrets wherever they appear: headers, tokens, keys, signatures, cookies. */
const secretFieldName = /authorization|cookie|passw|secret|token|signature|api.?key|script.?key|credential|session.?id/i;

/** Query parameters of signed or authenticated URLs (S3 X-Amz-*, GCS X-Goog-*, Azure sig, ShotGrid signature…). */
const secretQueryName = /sig|token|secret|passw|credential|key|auth/i;

const urlInText = /\bhttps?:\/\/[^\s"'<>`]+/gi;
const bearerInText = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;

/** Masks the credentials (`user:password@`) and the values of secret query parameters in one URL. */
export function redactUrl(url: string): string {
  // A proxy's URL may carry its credentials; an error message may quote one.
  const text = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/i, `$1${REDACTED}@`);
  const queryAt = text.indexOf('?');
  if (queryAt < 0) return text;
  const hashAt = text.indexOf('#', queryAt);
  const query = text.slice(queryAt + 1, hashAt < 0 ? undefined : hashAt);
  const masked = query
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      return equals >= 0 && secretQueryName.test(safeDecode(name)) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return `${text.slice(0, queryAt + 1)}${masked}${hashAt < 0 ? '' : text.slice(hashAt)}`;
}

/** Masks signed URLs' secret parameters and Authorization credentials inside free text. */
export function scrubText(text: string): string {
  return text.replace(urlInText, redactUrl).replace(bearerInText, `$1 ${REDACTED}`);
}

/** A copy of a log object with secret fields replaced and secret text masked. Non-plain objects pass through. */
export function scrubForLog(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (Array.isArray(value)) return value.map((item) => scrubForLog(item, depth + 1));
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value; // errors (serialized below), Secret, Date…
  const scrubbed: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    scrubbed[key] = secretFieldName.test(key) && item !== null && item !== undefined ? REDACTED : scrubForLog(item, depth + 1);
  }
  return scrubbed;
}

/** How errors appear in logs: what and where from, never a stack. */
export function serializeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error, message: scrubText(String(error)) };
  const fields: Record<string, unknown> = { type: error.name, message: scrubText(error.message) };
  const { code, status } = error as { code?: unknown; status?: unknown };
  if (typeof code === 'string' || typeof code === 'number') fields['code'] = code;
  if (typeof status === 'number') fields['status'] = status;
  if (error.cause !== undefined) fields['cause'] = serializeError(error.cause);
  return fields;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where the JSON lines go; stdout when not given. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'ami-transfer' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => scrubForLog(bindings) as Record<string, unknown>,
        log: (object) => scrubForLog(object) as Record<string, unknown>,
      },
      serializers: { err: serializeError, error: serializeError },
      hooks: {
        // The message string bypasses the formatters; for `log.error(err)` pino would use the raw error message.
        logMethod(args, method) {
          const [first, second] = args as unknown[];
          const scrubbed = args.map((arg: unknown) => (typeof arg === 'string' ? scrubText(arg) : arg));
          if (first instanceof Error && typeof second !== 'string') scrubbed.splice(1, 0, scrubText(first.message));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/** A request id from a proxy or client is kept when it is short and plain, so it can be matched across systems. */
const saneRequestId = /^[A-Za-z0-9._:+=/-]{1,128}$/;

export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && saneRequestId.test(header) ? header : randomUUID();
}

/**
 * Gives each request an id (answered in `X-Request-Id`) and a child logger (`req.log`), and logs one line when the
 * response ends: method, path without query, status, duration. A route whose path holds a capability (a context
 * token) sets `res.locals.logPath` to a masked form.
 */
export function requestLogging(log: Logger, options: { quietPaths?: readonly string[] } = {}): RequestHandler {
  // Health probes come every few seconds from load balancers: logged at debug level unless they fail.
  const quietPaths = new Set(options.quietPaths ?? []);
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFrom(req.get('x-request-id'));
    req.id = requestId;
    req.log = log.child({ requestId });
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);

    const logCompletion = (): void => {
      const durationMs = Number((process.hrtime.bigint() - started) / 1000n) / 1000;
      const aborted = !res.writableFinished;
      const line = {
        method: req.method,
        path: res.locals.logPath ?? pathWithoutQuery(req.originalUrl),
        status: res.statusCode,
        durationMs,
        ...(res.locals.errorCode === undefined ? {} : { error: res.locals.errorCode }),
        ...(aborted ? { aborted: true } : {}),
      };
      if (res.statusCode >= 500 && !aborted) req.log.warn(line, 'request failed');
      else if ((quietPaths.has(line.path) || isPoll(req.method, line.path)) && !aborted && res.statusCode < 400) req.log.debug(line, 'request done');
      else req.log.info(line, aborted ? 'request aborted' : 'request done');
    };
    // 'close' comes after 'finish' for a completed response, and alone when the connection dropped first.
    res.once('close', logCompletion);
    next();
  };
}

/**
 * What pages ask again and again while they wait (a zip's status, thumbnails being made, an upload's state): a line
 * a second per open page would drown the log, so they are logged at debug level unless they fail.
 */
function isPoll(method: string, path: string): boolean {
  return method === 'GET' && /\/(?:zip\/[^/]+\/status|thumbnails|uploads(?:\/[^/]+)?|sizes)$/.test(path);
}

function pathWithoutQuery(url: string): string {
  const path = url.split('?', 1)[0] ?? '';
  return path.length > 512 ? `${path.slice(0, 512)}…` : path;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

import type { Logger } from 'pino';

// What our middleware adds to every request and response, typed once (set in src/log.ts, requestLogging).
declare global {
  namespace Express {
    interface Request {
      /** The request id: the caller's X-Request-Id when sane, else a fresh UUID. */
      id: string;
      /** A logger that stamps every line with the request id. */
      log: Logger;
    }
    interface Locals {
      requestId?: string;
      /** The path to log instead of the real one, for paths that carry a capability (e.g. a context token). */
      logPath?: string;
      /** The stable code of the error answered, for the request's log line (set by the error handler). */
      errorCode?: string;
    }
  }
}

export {};

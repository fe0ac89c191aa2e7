import express, { type ErrorRequestHandler, type Request, type Response, type Router } from 'express';
import type { FaultInjector } from '../faults.ts';
import type { Accounts } from './access.ts';
import { FtrackError, validationError } from './errors.ts';
import { runBatch, type ApiDeps } from './operations.ts';

// POST /api: a JSON list of operations, authenticated on every request from `ftrack-user` and `ftrack-api-key`
// (ftrack.md, strict). Errors are one {exception, content, error_code} object in place of the whole reply, sent with
// HTTP 200 (UNCONFIRMED: the JS client ignores the status, so a client must read `exception`; see README).
// Injected faults play what sits in front of a real server: a 502 or 503 from a proxy is HTML, not JSON.

export const maxApiBodyBytes = 8 * 1024 * 1024;

export function apiRouter(deps: ApiDeps & { accounts: Accounts; faults: FaultInjector }): Router {
  const router = express.Router();
  router.post(
    '/api',
    async (_req, res, next) => {
      await deps.faults.delay();
      const fault = deps.faults.apiFault();
      if (fault === '429') {
        res.set('Retry-After', String(deps.faults.settings.retryAfterSeconds));
        sendError(res, new FtrackError('ServerError', 'Too many requests: slow down.'), 429);
      } else if (fault === '502' || fault === '503') {
        const title = fault === '502' ? '502 Bad Gateway' : '503 Service Temporarily Unavailable';
        res.status(Number(fault)).type('text/html').send(`<html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>`);
      } else {
        next();
      }
    },
    // Read as text whatever the content type, bounded, and parsed here: a body that is not JSON gets ftrack's error.
    express.text({ type: () => true, limit: maxApiBodyBytes }),
    async (req, res) => {
      let actor;
      try {
        actor = deps.accounts.authenticate(header(req, 'ftrack-user'), header(req, 'ftrack-api-key'));
      } catch (error) {
        if (error instanceof FtrackError) return sendError(res, error);
        throw error;
      }
      let operations: unknown;
      try {
        operations = JSON.parse(typeof req.body === 'string' ? req.body : '');
      } catch {
        return sendError(res, validationError('The request body is not valid JSON.'));
      }
      try {
        res.set('Cache-Control', 'no-store').json(await runBatch(deps, actor, operations));
      } catch (error) {
        if (error instanceof FtrackError) return sendError(res, error);
        throw error;
      }
    },
  );
  const tooLarge: ErrorRequestHandler = (error, _req, res, next) => {
    if ((error as { type?: string }).type === 'entity.too.large') {
      sendError(res, validationError(`The request body is larger than ${maxApiBodyBytes} bytes.`), 413);
      return;
    }
    if (res.headersSent) return next(error);
    sendError(res, new FtrackError('ServerError', 'The server could not handle the request.'), 500);
  };
  router.use('/api', tooLarge);
  return router;
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function sendError(res: Response, error: FtrackError, status = 200): void {
  res.status(status).set('Cache-Control', 'no-store').json(error.toReply());
}

import { randomBytes } from 'node:crypto';
import type { ErrorRequestHandler, Response } from 'express';

// ShotGrid's REST error shape: {"errors":[{"id","status","code","title","source","detail","meta"}]}.
// Codes as ShotGrid uses them: 102 authentication/authorization, 103 bad request, 104 not found,
// 106 permission denied on a record the user can see.

export const API_CODE = {
  auth: 102,
  badRequest: 103,
  notFound: 104,
  permission: 106,
  unsupportedMediaType: 107,
  server: 100,
} as const;

export class ApiError extends Error {
  readonly status: number;
  readonly code: number;
  readonly source: Record<string, unknown> | null;

  constructor(status: number, code: number, title: string, source: Record<string, unknown> | null = null) {
    super(title);
    this.status = status;
    this.code = code;
    this.source = source;
  }
}

export const badRequest = (title: string, source: Record<string, unknown> | null = null): ApiError =>
  new ApiError(400, API_CODE.badRequest, title, source);
export const notFound = (title = 'Record not found'): ApiError => new ApiError(404, API_CODE.notFound, title);
export const unauthorized = (title: string): ApiError => new ApiError(401, API_CODE.auth, title);
export const forbidden = (title: string): ApiError => new ApiError(403, API_CODE.permission, title);

export function sendApiError(res: Response, error: ApiError): void {
  res.status(error.status).type('application/json').send(
    JSON.stringify({
      errors: [
        {
          id: randomBytes(16).toString('hex'),
          status: error.status,
          code: error.code,
          title: error.message,
          source: error.source,
          detail: null,
          meta: null,
        },
      ],
    }),
  );
}

/** Express error handler for the sandbox API: ShotGrid's error body for everything, 500 for the unexpected. */
export const apiErrorHandler: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  if (error instanceof ApiError) {
    sendApiError(res, error);
    return;
  }
  // body-parser errors carry a status (400 malformed JSON, 413 too large, 415 charset).
  const status = typeof error === 'object' && error !== null && 'status' in error ? Number(error.status) : 500;
  if (status >= 400 && status < 500) {
    sendApiError(res, new ApiError(status, API_CODE.badRequest, error instanceof Error ? error.message : 'Bad request'));
    return;
  }
  sendApiError(res, new ApiError(500, API_CODE.server, 'Internal server error'));
};

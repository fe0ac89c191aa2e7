import { TrackerError, type TrackerErrorKind } from '../tracker-error.ts';

// ftrack's refusals as TrackerErrors. The API answers an error as one object in place of the whole batch reply,
// `{exception, content, error_code}`, with any HTTP status (ftrack.md, "Errors": the JS client reads only
// `exception`); a proxy in front answers HTML. Messages keep the site's words and never a key.

export class FtrackError extends TrackerError {
  /** ftrack's exception name (ValidationError, PermissionError…), when the site answered one. */
  readonly exception: string | null;

  constructor(kind: TrackerErrorKind, message: string, details: { status?: number; retryAfterMs?: number; exception?: string } = {}) {
    super(kind, message, { ...details, siteName: 'ftrack' });
    this.name = 'FtrackError';
    this.exception = details.exception ?? null;
  }
}

/** A ValidationError about a record that is not there (or not visible to the user), in the words servers use. */
const MISSING = /\b(not found|does not exist|no such|no result)\b|^No \S+ with key\b/i;

/** The kind of an `{exception, content}` reply. */
export function kindOfException(exception: string, content: string): TrackerErrorKind {
  switch (exception) {
    case 'InvalidCredentialsError':
      return 'auth';
    case 'PermissionError':
      return 'permission';
    case 'ValidationError':
    case 'NoResultFoundError':
      return MISSING.test(content) ? 'not_found' : 'bad_request';
    default:
      return 'unavailable';
  }
}

export function errorFromException(reply: { exception: string; content?: unknown }, status: number): FtrackError {
  const content = typeof reply.content === 'string' && reply.content !== '' ? reply.content.slice(0, 500) : reply.exception;
  return new FtrackError(kindOfException(reply.exception, content), `ftrack: ${content}`, { status, exception: reply.exception });
}

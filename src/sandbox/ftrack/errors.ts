// ftrack's API error: one object replaces the whole batch reply (ftrack.md, "The `/api` endpoint"):
// {"exception": "<name>", "content": "<message>", "error_code": null}. The JS client looks only for `exception`
// (ValidationError → ServerValidationError, PermissionError → ServerPermissionDeniedError, anything else → ServerError).

export type FtrackExceptionName =
  | 'ValidationError'
  | 'PermissionError'
  | 'InvalidCredentialsError'
  | 'NoResultFoundError'
  | 'ServerError';

export interface FtrackErrorReply {
  exception: FtrackExceptionName;
  content: string;
  error_code: null;
}

export class FtrackError extends Error {
  readonly exception: FtrackExceptionName;

  constructor(exception: FtrackExceptionName, content: string) {
    super(content);
    this.exception = exception;
  }

  toReply(): FtrackErrorReply {
    return { exception: this.exception, content: this.message, error_code: null };
  }
}

export const validationError = (content: string): FtrackError => new FtrackError('ValidationError', content);
export const permissionError = (content: string): FtrackError => new FtrackError('PermissionError', content);
export const invalidCredentials = (): FtrackError =>
  new FtrackError('InvalidCredentialsError', 'The supplied API key is not valid.');

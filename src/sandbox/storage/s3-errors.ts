// S3's error vocabulary: the codes, statuses and messages a client of real S3 meets, and the XML body they come in.
// One StorageError type serves both the HTTP side (rendered as XML) and the in-process calls (thrown as is).

export class StorageError extends Error {
  readonly status: number;
  /** S3 error code, e.g. 'NoSuchKey', 'InvalidPart'. */
  readonly code: string;
  /** Extra elements S3 adds to the body for this error (e.g. Key, UploadId, ProposedSize). */
  readonly details: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, details: Record<string, string> = {}) {
    super(message);
    this.name = 'StorageError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** Largest single PUT (object or part). */
export const maxPutSize = 5 * GiB;
/** Smallest part but the last in a multipart upload. */
export const minPartSize = 5 * MiB;
export const maxPartNumber = 10_000;

export const s3Errors = {
  accessDenied: (message = 'Access Denied') => new StorageError(403, 'AccessDenied', message),
  requestExpired: (expiresSeconds: string, expiredAt: Date, now: Date) =>
    new StorageError(403, 'AccessDenied', 'Request has expired', {
      'X-Amz-Expires': expiresSeconds,
      Expires: isoSeconds(expiredAt),
      ServerTime: isoSeconds(now),
    }),
  signatureDoesNotMatch: () =>
    new StorageError(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    ),
  /** Names lower-case, joined by ', ' as S3 lists them. */
  headersNotSigned: (names: readonly string[]) =>
    new StorageError(403, 'AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: names.join(', '),
    }),
  invalidAccessKeyId: (accessKeyId: string) =>
    new StorageError(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKeyId,
    }),
  authQueryError: (message: string) => new StorageError(400, 'AuthorizationQueryParametersError', message),
  oneAuthMechanism: () =>
    new StorageError(
      400,
      'InvalidArgument',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
      { ArgumentName: 'Authorization', ArgumentValue: '[redacted]' },
    ),
  unsupportedAuthorization: () =>
    new StorageError(400, 'InvalidArgument', 'Unsupported Authorization Type', {
      ArgumentName: 'Authorization',
      ArgumentValue: '[redacted]',
    }),
  corsNotEnabled: () => new StorageError(403, 'AccessForbidden', 'CORSResponse: CORS is not enabled for this bucket.'),
  invalidRequest: (message: string) => new StorageError(400, 'InvalidRequest', message),
  headerNotLatin1: (name: string) =>
    new StorageError(400, 'InvalidArgument', 'Header value cannot be represented using ISO-8859-1.', {
      ArgumentName: name,
    }),
  invalidUri: () => new StorageError(400, 'InvalidURI', "Couldn't parse the specified URI."),
  noSuchBucket: (bucket: string) =>
    new StorageError(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket }),
  notImplemented: () =>
    new StorageError(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented'),
  methodNotAllowed: (method: string) =>
    new StorageError(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', {
      Method: method,
      ResourceType: 'OBJECT',
    }),
  keyTooLong: () => new StorageError(400, 'KeyTooLongError', 'Your key is too long'),
  noSuchKey: (key: string) => new StorageError(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key }),
  noSuchUpload: (uploadId: string) =>
    new StorageError(
      404,
      'NoSuchUpload',
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      { UploadId: uploadId },
    ),
  missingContentLength: () => new StorageError(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.'),
  incompleteBody: () =>
    new StorageError(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header'),
  invalidDigest: (contentMd5: string) =>
    new StorageError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.', { 'Content-MD5': contentMd5 }),
  badDigest: (expectedBase64: string, computedBase64: string) =>
    new StorageError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.', {
      ExpectedDigest: expectedBase64,
      CalculatedDigest: computedBase64,
    }),
  entityTooLarge: (proposed: number) =>
    new StorageError(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      ProposedSize: String(proposed),
      MaxSizeAllowed: String(maxPutSize),
    }),
  entityTooSmall: (proposed: number, partNumber: number, etag: string) =>
    new StorageError(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
      ProposedSize: String(proposed),
      MinSizeAllowed: String(minPartSize),
      PartNumber: String(partNumber),
      ETag: etag,
    }),
  invalidPartNumber: (value: string) =>
    new StorageError(400, 'InvalidArgument', `Part number must be an integer between 1 and ${maxPartNumber}, inclusive`, {
      ArgumentName: 'partNumber',
      ArgumentValue: value,
    }),
  invalidPart: (uploadId: string, partNumber: number, etag: string) =>
    new StorageError(
      400,
      'InvalidPart',
      "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.",
      { UploadId: uploadId, PartNumber: String(partNumber), ETag: etag },
    ),
  invalidPartOrder: (uploadId: string) =>
    new StorageError(
      400,
      'InvalidPartOrder',
      'The list of parts was not in ascending order. Parts must be ordered by part number.',
      { UploadId: uploadId },
    ),
  malformedXml: () =>
    new StorageError(
      400,
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema',
    ),
  tooManyParts: (count: number) =>
    new StorageError(400, 'InvalidArgument', `Part number must be an integer between 1 and ${maxPartNumber}, inclusive`, {
      ArgumentName: 'parts',
      ArgumentValue: String(count),
    }),
  invalidRange: (rangeRequested: string, size: number) =>
    new StorageError(416, 'InvalidRange', 'The requested range is not satisfiable', {
      RangeRequested: rangeRequested,
      ActualObjectSize: String(size),
    }),
  preconditionFailed: (condition: string) =>
    new StorageError(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
      Condition: condition,
    }),
  internalError: () => new StorageError(500, 'InternalError', 'We encountered an internal error. Please try again.'),
  slowDown: () => new StorageError(503, 'SlowDown', 'Please reduce your request rate.'),
} as const;

/** S3's error body: `<Error><Code/><Message/>…details…<RequestId/><HostId/></Error>`. */
export function errorXml(error: StorageError, requestId: string, hostId: string): string {
  let details = '';
  for (const [name, value] of Object.entries(error.details)) details += `<${name}>${escapeXml(value)}</${name}>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message>${details}` +
    `<RequestId>${requestId}</RequestId><HostId>${hostId}</HostId></Error>`
  );
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

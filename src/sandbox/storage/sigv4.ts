import { createHash, createHmac, createSecretKey, timingSafeEqual, type Hash, type Hmac, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { s3Errors } from './s3-errors.ts';

// AWS Signature V4 query authentication (presigned URLs), made and checked by @smithy/signature-v4 as S3 does:
// path not re-escaped (S3 signs the already-encoded path), payload not signed (UNSIGNED-PAYLOAD), only `host`
// signed. Verification re-signs the incoming request with the date and expiry it carries and compares.

export const maxExpiresSeconds = 604_800;
const algorithm = 'AWS4-HMAC-SHA256';
const service = 's3';
// Present only so the signer puts UNSIGNED-PAYLOAD in the canonical request; neither signed nor hoisted to the URL.
const payloadHashHeader = 'x-amz-content-sha256';
const payloadHeaderOnly = new Set([payloadHashHeader]);

const param = {
  algorithm: 'X-Amz-Algorithm',
  credential: 'X-Amz-Credential',
  date: 'X-Amz-Date',
  expires: 'X-Amz-Expires',
  signedHeaders: 'X-Amz-SignedHeaders',
  signature: 'X-Amz-Signature',
} as const;
const authParams: readonly string[] = Object.values(param);

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface PresignInput {
  method: string;
  /** Where the URL points, e.g. http://127.0.0.1:9000 (its host is the signed `host` header). */
  origin: URL;
  /** Canonical path, already percent-encoded (see objectPath). */
  path: string;
  /** Extra query parameters, covered by the signature (partNumber, uploadId, response-content-disposition…). */
  query: Readonly<Record<string, string>>;
  expiresIn: number;
  signingDate?: Date;
  /**
   * Headers to sign beside `host` (lower-case names), which the request must then carry with these values. The
   * site never signs any (its URLs sign `host` only, as ShotGrid's); tests use it to show signed headers pass.
   */
  signedHeaders?: Readonly<Record<string, string>>;
}

export interface SignedRequestInput {
  method: string;
  /** Canonical path of the request (re-encoded from the decoded key, so equivalent encodings verify alike). */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  now: Date;
  /** Sandbox fault: URLs expire this many seconds after signing, whatever X-Amz-Expires says. */
  ttlSeconds: number | null;
}

export class QuerySigner {
  readonly #signer: SignatureV4;
  readonly #accessKeyId: string;
  readonly #region: string;

  constructor(region: string, credentials: SigningCredentials) {
    this.#region = region;
    this.#accessKeyId = credentials.accessKeyId;
    this.#signer = new SignatureV4({
      service,
      region,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      sha256: Sha256,
      uriEscapePath: false,
    });
  }

  /** A full presigned URL. */
  async presignUrl(input: PresignInput): Promise<string> {
    if (!Number.isInteger(input.expiresIn) || input.expiresIn < 1 || input.expiresIn > maxExpiresSeconds) {
      throw new RangeError(`expiresIn must be an integer from 1 to ${maxExpiresSeconds} seconds`);
    }
    const signed = await this.#presign({
      method: input.method,
      host: input.origin.host,
      path: input.path,
      query: { ...input.query },
      headers: { ...input.signedHeaders, host: input.origin.host },
      signingDate: input.signingDate ?? new Date(),
      expiresIn: input.expiresIn,
    });
    return `${input.origin.origin}${input.path}?${formatQuery(signed)}`;
  }

  /** Throws the StorageError S3 would answer with, or resolves when the request's query signature holds. */
  async verify(input: SignedRequestInput): Promise<void> {
    const { query } = input;
    const values = new Map<string, string>();
    for (const name of authParams) {
      const all = query.getAll(name);
      if (all.length === 0) {
        if (name === param.algorithm) throw s3Errors.accessDenied();
        throw s3Errors.authQueryError(
          'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
        );
      }
      const [value] = all;
      if (all.length > 1 || value === undefined) throw s3Errors.authQueryError(`${name} must be given once`);
      values.set(name, value);
    }
    const get = (name: string): string => values.get(name) ?? '';

    if (get(param.algorithm) !== algorithm) {
      throw s3Errors.authQueryError(`X-Amz-Algorithm only supports "${algorithm}"`);
    }
    const signingDate = parseAmzDate(get(param.date));
    if (!signingDate) {
      throw s3Errors.authQueryError(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
      );
    }
    this.#checkCredential(get(param.credential), get(param.date));

    const expiresText = get(param.expires);
    if (!/^\d{1,10}$/.test(expiresText)) throw s3Errors.authQueryError('X-Amz-Expires should be a number');
    const expiresIn = Number(expiresText);
    if (expiresIn > maxExpiresSeconds) {
      throw s3Errors.authQueryError(`X-Amz-Expires must be less than a week (in seconds) that is ${maxExpiresSeconds}`);
    }
    const expiresAt = new Date(signingDate.getTime() + expiresIn * 1000);
    if (input.now.getTime() > expiresAt.getTime()) throw s3Errors.requestExpired(expiresText, expiresAt, input.now);
    if (input.ttlSeconds !== null) {
      const ttlEnd = new Date(signingDate.getTime() + input.ttlSeconds * 1000);
      if (input.now.getTime() >= ttlEnd.getTime()) throw s3Errors.requestExpired(expiresText, ttlEnd, input.now);
    }

    const signedHeaderNames = get(param.signedHeaders).split(';');
    if (!signedHeaderNames.includes('host')) {
      throw s3Errors.authQueryError('Error parsing the X-Amz-SignedHeaders parameter; the host header must be signed');
    }
    // S3 refuses, rather than ignores, a Content-MD5 or x-amz-* header the URL did not sign (x-amz-content-sha256
    // aside): a host-only URL takes neither (shotgrid-rest.md, "Upload (direct to storage)": aws/aws-sdk-ruby#543,
    // aws/aws-sdk-php#1392, aristidb/aws#243). `x-amzn-trace-id` is not an `x-amz-` header (SDKs leave it unsigned).
    const notSigned = Object.keys(input.headers).filter(
      (name) =>
        (name === 'content-md5' || (name.startsWith('x-amz-') && name !== payloadHashHeader)) && !signedHeaderNames.includes(name),
    );
    if (notSigned.length > 0) throw s3Errors.headersNotSigned(notSigned);
    const headers: Record<string, string> = {};
    for (const name of signedHeaderNames) {
      const value = input.headers[name];
      if (value === undefined) throw s3Errors.signatureDoesNotMatch();
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }

    const otherParams: Record<string, string | string[]> = {};
    for (const name of new Set(query.keys())) {
      if (authParams.includes(name)) continue;
      const all = query.getAll(name);
      otherParams[name] = all.length === 1 ? (all[0] ?? '') : all;
    }
    const expected = await this.#presign({
      method: input.method,
      host: headers['host'] ?? '',
      path: input.path,
      query: otherParams,
      headers,
      signingDate,
      expiresIn,
    });
    if (!sameSignature(get(param.signature), String(expected[param.signature] ?? ''))) {
      throw s3Errors.signatureDoesNotMatch();
    }
  }

  #checkCredential(credential: string, amzDate: string): void {
    const parts = credential.split('/');
    const [accessKeyId, date, region, scopeService, terminal] = parts;
    if (parts.length !== 5 || !accessKeyId || !date || !region || !scopeService || !terminal) {
      throw s3Errors.authQueryError(
        'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
      );
    }
    if (accessKeyId !== this.#accessKeyId) throw s3Errors.invalidAccessKeyId(accessKeyId);
    if (region !== this.#region) {
      throw s3Errors.authQueryError(
        `Error parsing the X-Amz-Credential parameter; the region '${region}' is wrong; expecting '${this.#region}'`,
      );
    }
    if (scopeService !== service) {
      throw s3Errors.authQueryError(
        `Error parsing the X-Amz-Credential parameter; incorrect service '${scopeService}'. This endpoint belongs to '${service}'.`,
      );
    }
    if (terminal !== 'aws4_request') {
      throw s3Errors.authQueryError(
        `Error parsing the X-Amz-Credential parameter; incorrect terminal '${terminal}'. This endpoint uses 'aws4_request'.`,
      );
    }
    if (date !== amzDate.slice(0, 8)) {
      throw s3Errors.authQueryError('Invalid credential date. Date is not the same as X-Amz-Date.');
    }
  }

  async #presign(request: {
    method: string;
    host: string;
    path: string;
    query: Record<string, string | string[]>;
    headers: Record<string, string>;
    signingDate: Date;
    expiresIn: number;
  }): Promise<Record<string, string | string[] | null>> {
    const signed = await this.#signer.presign(
      new HttpRequest({
        method: request.method,
        protocol: 'http:',
        hostname: request.host, // not signed itself: the `host` header is
        path: request.path,
        query: request.query,
        headers: { ...request.headers, [payloadHashHeader]: 'UNSIGNED-PAYLOAD' },
      }),
      {
        signingDate: request.signingDate,
        expiresIn: request.expiresIn,
        unsignableHeaders: payloadHeaderOnly,
        unhoistableHeaders: payloadHeaderOnly,
      },
    );
    return signed.query ?? {};
  }
}

type Bytes = string | ArrayBuffer | ArrayBufferView;

/**
 * SHA-256, or HMAC-SHA256 when keyed, for the signer (its Checksum interface). The key goes to node:crypto as a
 * KeyObject: Node 24 takes a slow path for keys given as raw bytes (about four times the cost of the HMAC itself),
 * and a signature is five HMACs, on every presigned URL made and every request checked.
 */
class Sha256 {
  readonly #key: KeyObject | null;
  #hash: Hash | Hmac;

  constructor(secret?: Bytes) {
    this.#key = secret === undefined ? null : typeof secret === 'string' ? createSecretKey(secret, 'utf8') : createSecretKey(asBuffer(secret));
    this.#hash = this.#fresh();
  }

  update(data: Bytes): void {
    if (typeof data === 'string') this.#hash.update(data, 'utf8');
    else this.#hash.update(asBuffer(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#fresh();
  }

  #fresh(): Hash | Hmac {
    return this.#key === null ? createHash('sha256') : createHmac('sha256', this.#key);
  }
}

function asBuffer(bytes: ArrayBuffer | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(bytes) ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes);
}

/** The canonical (and URL) path of an object: `/<bucket>/<key>`, each key segment percent-encoded, `/` kept. */
export function objectPath(bucket: string, key: string): string {
  return `/${encodeRfc3986(bucket)}/${key.split('/').map(encodeRfc3986).join('/')}`;
}

/** encodeURIComponent plus the sub-delimiters it leaves alone, as SigV4 wants (only A-Z a-z 0-9 - _ . ~ bare). */
export function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function formatQuery(query: Record<string, string | string[] | null>): string {
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === null) pairs.push(encodeRfc3986(name));
    else for (const one of Array.isArray(value) ? value : [value]) pairs.push(`${encodeRfc3986(name)}=${encodeRfc3986(one)}`);
  }
  return pairs.join('&');
}

/** `20240229T192625Z` → Date, or undefined when not that exact form or not a real instant. */
function parseAmzDate(text: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match.map(Number);
  const date = new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day, hour, minute, second));
  // Date.UTC rolls 20240231 over into March: refuse what does not round-trip.
  const back = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return back === text ? date : undefined;
}

function sameSignature(provided: string, expected: string): boolean {
  const a = Buffer.from(provided);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

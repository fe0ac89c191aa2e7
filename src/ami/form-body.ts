import type { Request } from 'express';
import busboy from 'busboy';
import type { ByteBudget } from '../net/byte-budget.ts';
import { ERROR_CODES, HttpError } from '../web/errors.ts';
import { fieldsFromUrlEncoded, TooManyFieldsError, type AmiFields } from './payload.ts';

// Reads the body of an AMI POST into its fields, in the order sent. ShotGrid posts a urlencoded form; multipart is
// accepted too (ami.md). The body may be megabytes (`ids` lists every row of a big page), so the limit is generous
// but firm, and a refused body is read to its end before answering, as Express's own parsers do, so the browser
// sees the answer rather than a reset connection. Fields only: an AMI carries no file.

export interface FormBodyLimits {
  /** Largest body, in bytes. */
  maxBytes: number;
  /** Most fields (ShotGrid sends about 25). */
  maxFields: number;
}

export const defaultFormBodyLimits: FormBodyLimits = { maxBytes: 8 * 1024 * 1024, maxFields: 200 };

/** Bytes of a launch body not counted against the byte budget: every real launch fits in them. */
const UNCOUNTED_BYTES = 64 * 1024;

/** A declared length this far over the limit is refused at once, and the connection closed, not drained. */
const DRAIN_FACTOR = 4;

export async function readAmiForm(req: Request, limits: FormBodyLimits = defaultFormBodyLimits, budget?: ByteBudget): Promise<AmiFields> {
  const encoding = (req.get('content-encoding') ?? 'identity').toLowerCase();
  if (encoding !== 'identity') {
    throw unsupported(`Content-Encoding ${encoding} is not accepted.`);
  }
  const declared = Number(req.get('content-length'));
  if (Number.isFinite(declared) && declared > limits.maxBytes * DRAIN_FACTOR) {
    throw tooLarge(limits, { Connection: 'close' });
  }

  // By the header, not req.is(), which reads an empty body as "no type" and would call it unsupported.
  const mediaType = (req.get('content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (mediaType === 'application/x-www-form-urlencoded') {
    const charset = /;\s*charset="?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw unsupported(`The form must be sent as UTF-8, not ${charset}.`);
    }
    const body = await readRawBody(req, limits.maxBytes, budget);
    // Browsers percent-encode everything but ASCII; a client that sends raw UTF-8 is read as UTF-8 too.
    try {
      return fieldsFromUrlEncoded(body.toString('utf8'), limits.maxFields);
    } catch (error) {
      if (error instanceof TooManyFieldsError) throw tooManyFields(limits);
      throw error;
    }
  }
  if (mediaType === 'multipart/form-data') {
    return readMultipartFields(req, limits);
  }
  throw unsupported(
    req.get('content-type') === undefined
      ? 'The request has no Content-Type: an Action Menu Item posts a form.'
      : 'An Action Menu Item posts a form (application/x-www-form-urlencoded or multipart/form-data).',
  );
}

/** The body, up to maxBytes; what it holds counts against the process's byte budget while it is read. */
async function readRawBody(req: Request, maxBytes: number, budget?: ByteBudget): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let held = 0;
  let over = false;
  try {
    // destroyOnReturn off: a body cut short below keeps its socket for the 413 answer.
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) over = true;
      // Past the limit the rest is read and dropped, so the answer reaches a browser that is still sending; but
      // only so far (a chunked body announces no length): then the answer goes, and the connection is closed.
      if (size > maxBytes * DRAIN_FACTOR) throw tooLarge({ maxBytes }, { Connection: 'close' });
      if (!over) {
        // The first 64 KiB are free (a launch is a few kB; only big `ids` lists reach megabytes), the rest counts.
        // Not waited for: readers holding part of a body while waiting for room for more could hold it all.
        const counted = Math.max(0, size - UNCOUNTED_BYTES) - held;
        if (budget && counted > 0 && !budget.tryAcquire(counted)) throw busy();
        held += Math.max(0, counted);
        chunks.push(chunk);
      }
    }
    if (over) throw tooLarge({ maxBytes });
    return Buffer.concat(chunks, size);
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw cutOff(error);
  } finally {
    budget?.release(held);
  }
}

function readMultipartFields(req: Request, limits: FormBodyLimits): Promise<AmiFields> {
  return new Promise((resolve, reject) => {
    const fields: [string, string][] = [];
    let failure: HttpError | undefined;
    let size = 0;

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        defCharset: 'utf8',
        limits: { fieldSize: limits.maxBytes, fields: limits.maxFields, fieldNameSize: 200, parts: limits.maxFields },
      });
    } catch {
      // busboy throws on a multipart Content-Type without a boundary.
      drainThen(req, () => reject(HttpError.badRequest('The multipart form has no boundary.')));
      return;
    }

    /** Stops parsing; the rest of the body is read and dropped, then the error is answered. */
    const fail = (error: HttpError): void => {
      if (failure !== undefined) return;
      failure = error;
      req.unpipe(parser);
      parser.removeAllListeners();
      parser.on('error', () => {});
      drainThen(req, () => reject(error));
    };

    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) fail(tooLarge(limits));
    });
    // A client that goes away mid-body: busboy would wait for the rest forever.
    req.on('error', (error) => fail(cutOff(error)));
    req.on('close', () => {
      if (!req.complete) fail(cutOff());
    });
    parser.on('field', (name, value, info) => {
      if (info.nameTruncated || info.valueTruncated) fail(tooLarge(limits));
      else fields.push([name, value]);
    });
    parser.on('file', (name, stream) => {
      stream.resume();
      fail(HttpError.badRequest('An Action Menu Item request carries fields only, not files.', { field: name }));
    });
    parser.on('fieldsLimit', () => fail(tooManyFields(limits)));
    parser.on('partsLimit', () => fail(tooManyFields(limits)));
    parser.on('error', () => fail(HttpError.badRequest('The multipart form is malformed.')));
    parser.on('close', () => {
      if (failure === undefined) resolve(fields);
    });
    req.pipe(parser);
  });
}

function drainThen(req: Request, done: () => void): void {
  if (req.readableEnded || req.destroyed) {
    done();
    return;
  }
  req.once('end', done);
  req.once('close', done);
  req.resume();
}

/** No one is left to read the answer; a 400 keeps it out of the error log, where our own failures go. */
function cutOff(cause?: unknown): HttpError {
  return HttpError.badRequest('The request body was cut off before its end.', cause === undefined ? {} : { cause });
}

function busy(): HttpError {
  return new HttpError(503, 'busy', 'The service is holding as much as it may of other requests right now; try again in a moment.', { headers: { 'Retry-After': '5' } });
}

function tooManyFields(limits: FormBodyLimits): HttpError {
  return new HttpError(413, ERROR_CODES.bodyTooLarge, `The request has more than the ${limits.maxFields} fields this service accepts from an Action Menu Item.`);
}

function tooLarge(limits: Pick<FormBodyLimits, 'maxBytes'>, headers: Record<string, string> = {}): HttpError {
  const mib = Math.round(limits.maxBytes / (1024 * 1024));
  return new HttpError(413, ERROR_CODES.bodyTooLarge, `The request is larger than the ${mib} MiB this service accepts from an Action Menu Item.`, {
    hint: 'Select fewer rows, or ask your administrator about the size limit.',
    headers,
  });
}

function unsupported(message: string): HttpError {
  return new HttpError(415, ERROR_CODES.unsupportedMediaType, message);
}

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { FaultInjector } from '../../src/sandbox/faults.ts';
import { ObjectStorage, StorageError } from '../../src/sandbox/storage/object-storage.ts';

// The sandbox's S3 over real sockets: bytes in equal bytes out, and every refusal S3 would make.

const MiB = 1024 * 1024;
const bucket = 'sandbox-media';
const credentials = { accessKeyId: 'AKIASANDBOX0000000001', secretAccessKey: 'sandbox/secret+key' };

let dir: string;
let faults: FaultInjector;
let storage: ObjectStorage;

async function startStorage(into: string, withFaults: FaultInjector): Promise<ObjectStorage> {
  const started = new ObjectStorage({ dir: into, bucket, region: 'us-west-2', credentials, faults: withFaults });
  await started.listen(0);
  return started;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ami-storage-test-'));
  faults = new FaultInjector();
  storage = await startStorage(dir, faults);
});

after(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => faults.reset());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function send(
  url: string,
  method: 'GET' | 'PUT' | 'HEAD' | 'POST' | 'OPTIONS',
  options: { body?: Buffer | Readable; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await request(url, {
    method,
    ...(options.body === undefined ? {} : { body: options.body }),
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function md5(data: Buffer): Buffer {
  return createHash('md5').update(data).digest();
}

/** The S3 error code in an XML error body. */
function errorCode(answer: Answer): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(answer.body.toString())?.[1];
}

function assertS3Error(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, `expected ${status} ${code}, got ${answer.status}: ${answer.body.toString()}`);
  assert.equal(errorCode(answer), code);
  assert.equal(answer.headers['content-type'], 'application/xml');
  assert.match(answer.body.toString(), /^<\?xml [^>]*\?>\n<Error><Code>.*<\/Message>.*<RequestId>[0-9A-F]+<\/RequestId>/s);
}

async function putViaUrl(key: string, data: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return send(await storage.presign('PUT', key, { expiresIn: 60 }), 'PUT', { body: data, headers });
}

async function getViaUrl(key: string, headers: Record<string, string> = {}): Promise<Answer> {
  return send(await storage.presign('GET', key, { expiresIn: 60 }), 'GET', { headers });
}

function withParam(url: string, name: string, value: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set(name, value);
  return parsed.toString();
}

async function filesIn(sub: 'objects' | 'parts', root = dir): Promise<string[]> {
  return readdir(path.join(root, sub));
}

test('a single PUT through a presigned URL comes back byte for byte from a presigned GET', async () => {
  const data = randomBytes(3 * MiB + 17);
  const put = await putViaUrl('single/plate.exr', data, { 'Content-Type': 'image/x-exr' });
  assert.equal(put.status, 200);
  assert.equal(put.headers['etag'], `"${md5(data).toString('hex')}"`);

  const got = await getViaUrl('single/plate.exr');
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(data));
  assert.equal(got.headers['content-length'], String(data.length));
  assert.equal(got.headers['content-type'], 'image/x-exr');
  assert.equal(got.headers['accept-ranges'], 'bytes');
  assert.equal(got.headers['etag'], put.headers['etag']);
  assert.ok(!Number.isNaN(Date.parse(String(got.headers['last-modified']))));

  const stored = storage.head('single/plate.exr');
  assert.equal(stored?.size, data.length);
  assert.equal(stored?.etag, put.headers['etag']);
});

test('HEAD answers the headers without a body; unknown keys are NoSuchKey', async () => {
  const data = randomBytes(1000);
  assert.equal((await putViaUrl('head/me.bin', data)).status, 200);
  const head = await send(await storage.presign('HEAD', 'head/me.bin', { expiresIn: 60 }), 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '1000');
  assert.equal(head.headers['content-type'], 'binary/octet-stream');
  assert.equal(head.body.length, 0);

  assertS3Error(await getViaUrl('head/missing.bin'), 404, 'NoSuchKey');
  const missingHead = await send(await storage.presign('HEAD', 'head/missing.bin', { expiresIn: 60 }), 'HEAD');
  assert.equal(missingHead.status, 404);
  assert.equal(missingHead.body.length, 0);
});

test('keys with slashes, spaces and non-ASCII round-trip; response-content-disposition/type override headers', async () => {
  const key = 'Shots/sh010/プレート v1 (final)#1+2%.mov';
  const data = randomBytes(4096);
  assert.equal((await putViaUrl(key, data, { 'Content-Type': 'video/quicktime' })).status, 200);
  const disposition = `attachment; filename="plate.mov"; filename*=UTF-8''${encodeURIComponent('プレート.mov')}`;
  const url = await storage.presign('GET', key, {
    expiresIn: 60,
    query: { 'response-content-disposition': disposition, 'response-content-type': 'application/octet-stream' },
  });
  const got = await send(url, 'GET');
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, data);
  assert.equal(got.headers['content-disposition'], disposition);
  assert.equal(got.headers['content-type'], 'application/octet-stream');
  // The file on disk is named by the storage, never by the key.
  const stored = storage.head(key);
  assert.ok(stored && !stored.path.includes('sh010') && path.dirname(stored.path) === path.join(dir, 'objects'));

  // A raw UTF-8 file name cannot travel in an HTTP header: S3 refuses it.
  const raw = await storage.presign('GET', key, { expiresIn: 60, query: { 'response-content-disposition': 'attachment; filename="プレート.mov"' } });
  assertS3Error(await send(raw, 'GET'), 400, 'InvalidArgument');
});

test('a 23 MiB multipart upload in 5 MiB parts (sent in parallel) completes and reads back identical', async () => {
  const data = randomBytes(23 * MiB);
  const key = 'multi/sh010_comp_v003.mov';
  const uploadId = storage.createMultipartUpload(key, 'video/quicktime');
  assert.equal(storage.multipartUploadsInProgress(), 1);

  const partSize = 5 * MiB;
  const numbers = Array.from({ length: Math.ceil(data.length / partSize) }, (_, index) => index + 1);
  const etags = await Promise.all(
    numbers.map(async (partNumber) => {
      const slice = data.subarray((partNumber - 1) * partSize, partNumber * partSize);
      const url = await storage.presignPart(key, uploadId, partNumber, 60);
      const put = await send(url, 'PUT', { body: slice });
      assert.equal(put.status, 200);
      assert.equal(put.headers['etag'], `"${md5(slice).toString('hex')}"`);
      return String(put.headers['etag']);
    }),
  );
  assert.equal(etags.length, 5);
  assert.equal((await filesIn('parts')).length, 5);

  // Quotes are optional in the list the client sends back.
  const parts = etags.map((etag, index) => ({ partNumber: index + 1, etag: index % 2 ? etag : etag.replaceAll('"', '') }));
  const stored = await storage.completeMultipartUpload(key, uploadId, parts);
  const expectedEtag = createHash('md5')
    .update(Buffer.concat(numbers.map((n) => md5(data.subarray((n - 1) * partSize, n * partSize)))))
    .digest('hex');
  assert.equal(stored.etag, `"${expectedEtag}-5"`);
  assert.equal(stored.size, data.length);
  assert.equal(stored.contentType, 'video/quicktime');
  assert.equal(storage.multipartUploadsInProgress(), 0);
  assert.deepEqual(await filesIn('parts'), []);

  const got = await getViaUrl(key);
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(data));
  assert.equal(got.headers['etag'], stored.etag);
});

test('Range reads: a-b, a-, -n answer 206 with Content-Range; past the end is 416 InvalidRange', async () => {
  const data = randomBytes(1000);
  await storage.putObject('range/file.bin', data, 'application/octet-stream');

  const middle = await getViaUrl('range/file.bin', { Range: 'bytes=100-199' });
  assert.equal(middle.status, 206);
  assert.deepEqual(middle.body, data.subarray(100, 200));
  assert.equal(middle.headers['content-range'], 'bytes 100-199/1000');
  assert.equal(middle.headers['content-length'], '100');

  const tail = await getViaUrl('range/file.bin', { Range: 'bytes=900-' });
  assert.equal(tail.status, 206);
  assert.deepEqual(tail.body, data.subarray(900));
  assert.equal(tail.headers['content-range'], 'bytes 900-999/1000');

  const suffix = await getViaUrl('range/file.bin', { Range: 'bytes=-50' });
  assert.equal(suffix.status, 206);
  assert.deepEqual(suffix.body, data.subarray(950));
  assert.equal(suffix.headers['content-range'], 'bytes 950-999/1000');

  const clamped = await getViaUrl('range/file.bin', { Range: 'bytes=990-5000' });
  assert.equal(clamped.status, 206);
  assert.deepEqual(clamped.body, data.subarray(990));

  const beyond = await getViaUrl('range/file.bin', { Range: 'bytes=1000-' });
  assertS3Error(beyond, 416, 'InvalidRange');
  assert.equal(beyond.headers['content-range'], 'bytes */1000');
});

test('refused: a forged signature, a changed key, a missing signature', async () => {
  const url = await storage.presign('PUT', 'refuse/forged.bin', { expiresIn: 60 });
  const signature = new URL(url).searchParams.get('X-Amz-Signature') ?? '';
  assert.match(signature, /^[0-9a-f]{64}$/);
  const flipped = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
  assertS3Error(await send(withParam(url, 'X-Amz-Signature', flipped), 'PUT', { body: Buffer.from('x') }), 403, 'SignatureDoesNotMatch');

  const otherKey = url.replace('/refuse/forged.bin?', '/refuse/other.bin?');
  assertS3Error(await send(otherKey, 'PUT', { body: Buffer.from('x') }), 403, 'SignatureDoesNotMatch');

  const extended = withParam(url, 'X-Amz-Expires', '3600');
  assertS3Error(await send(extended, 'PUT', { body: Buffer.from('x') }), 403, 'SignatureDoesNotMatch');

  const bare = `${storage.origin}/${bucket}/refuse/forged.bin`;
  assertS3Error(await send(bare, 'PUT', { body: Buffer.from('x') }), 403, 'AccessDenied');

  assert.equal(storage.head('refuse/forged.bin'), undefined);
  assert.equal(storage.head('refuse/other.bin'), undefined);
  // The untouched URL still works: the refusals were about the changes.
  assert.equal((await send(url, 'PUT', { body: Buffer.from('x') })).status, 200);
});

test('refused: a URL used with another method than it was signed for', async () => {
  await storage.putObject('refuse/method.bin', Buffer.from('payload'), 'text/plain');
  const putUrl = await storage.presign('PUT', 'refuse/method.bin', { expiresIn: 60 });
  assertS3Error(await send(putUrl, 'GET'), 403, 'SignatureDoesNotMatch');
  const getUrl = await storage.presign('GET', 'refuse/method.bin', { expiresIn: 60 });
  assertS3Error(await send(getUrl, 'PUT', { body: Buffer.from('overwrite') }), 403, 'SignatureDoesNotMatch');
  assert.equal((await send(getUrl, 'HEAD')).status, 403);
  assert.equal((await send(getUrl, 'GET')).body.toString(), 'payload');
});

test('refused: a request carrying a different Host than the URL was signed for', async () => {
  await storage.putObject('refuse/host.bin', Buffer.from('payload'), 'text/plain');
  const url = await storage.presign('GET', 'refuse/host.bin', { expiresIn: 60 });
  const port = new URL(url).port;
  assertS3Error(await send(url, 'GET', { headers: { host: `localhost:${port}` } }), 403, 'SignatureDoesNotMatch');
});

test('refused: an expired URL, by its own X-Amz-Expires and by the signedUrlTtlSeconds fault', async () => {
  await storage.putObject('refuse/expiring.bin', Buffer.from('payload'), 'text/plain');
  const shortLived = await storage.presign('GET', 'refuse/expiring.bin', { expiresIn: 1 });
  await sleep(2100);
  const expired = await send(shortLived, 'GET');
  assertS3Error(expired, 403, 'AccessDenied');
  assert.match(expired.body.toString(), /<Message>Request has expired<\/Message>.*<X-Amz-Expires>1<\/X-Amz-Expires>/);

  const fresh = await storage.presign('GET', 'refuse/expiring.bin', { expiresIn: 3600 });
  faults.update({ signedUrlTtlSeconds: 0 });
  assertS3Error(await send(fresh, 'GET'), 403, 'AccessDenied');
  faults.reset();
  assert.equal((await send(fresh, 'GET')).status, 200);
});

test('refused: X-Amz-Expires over a week, and malformed query auth', async () => {
  const url = await storage.presign('GET', 'refuse/week.bin', { expiresIn: 60 });
  assertS3Error(await send(withParam(url, 'X-Amz-Expires', '604801'), 'GET'), 400, 'AuthorizationQueryParametersError');
  const withoutDate = new URL(url);
  withoutDate.searchParams.delete('X-Amz-Date');
  assertS3Error(await send(withoutDate.toString(), 'GET'), 400, 'AuthorizationQueryParametersError');
  const otherKeyId = withParam(url, 'X-Amz-Credential', (new URL(url).searchParams.get('X-Amz-Credential') ?? '').replace('AKIA', 'AKIB'));
  assertS3Error(await send(otherKeyId, 'GET'), 403, 'InvalidAccessKeyId');
  await assert.rejects(storage.presign('GET', 'refuse/week.bin', { expiresIn: 604801 }), RangeError);
});

test('refused: an Authorization header next to the query signature (a forwarded Bearer token), or instead of it', async () => {
  const url = await storage.presign('PUT', 'refuse/bearer.bin', { expiresIn: 60 });
  const both = await send(url, 'PUT', { body: Buffer.from('x'), headers: { Authorization: 'Bearer api-token' } });
  assertS3Error(both, 400, 'InvalidArgument');
  assert.match(both.body.toString(), /Only one auth mechanism allowed/);
  const bearerOnly = await send(`${storage.origin}/${bucket}/refuse/bearer.bin`, 'GET', { headers: { Authorization: 'Bearer api-token' } });
  assertS3Error(bearerOnly, 400, 'InvalidArgument');
  assert.equal(storage.head('refuse/bearer.bin'), undefined);
});

test('refused: a CORS preflight (no CORS on the bucket) and other methods', async () => {
  const url = await storage.presign('PUT', 'refuse/cors.bin', { expiresIn: 60 });
  const preflight = await send(url, 'OPTIONS', {
    headers: { Origin: 'http://127.0.0.1:1', 'Access-Control-Request-Method': 'PUT' },
  });
  assertS3Error(preflight, 403, 'AccessForbidden');
  assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  assertS3Error(await send(url, 'POST', { body: Buffer.from('x') }), 403, 'SignatureDoesNotMatch');
});

test('refused: a chunked PUT without Content-Length is 411 MissingContentLength', async () => {
  const url = await storage.presign('PUT', 'refuse/chunked.bin', { expiresIn: 60 });
  const body = Readable.from([randomBytes(1000), randomBytes(1000)]);
  assertS3Error(await send(url, 'PUT', { body }), 411, 'MissingContentLength');
  assert.equal(storage.head('refuse/chunked.bin'), undefined);
});

test('Content-MD5: a mismatch is BadDigest and stores nothing; a malformed one is InvalidDigest; a right one passes', async () => {
  const data = randomBytes(64 * 1024);
  const wrong = md5(Buffer.from('something else')).toString('base64');
  assertS3Error(await putViaUrl('digest/file.bin', data, { 'Content-MD5': wrong }), 400, 'BadDigest');
  assert.equal(storage.head('digest/file.bin'), undefined);
  assertS3Error(await putViaUrl('digest/file.bin', data, { 'Content-MD5': 'not-an-md5' }), 400, 'InvalidDigest');
  assert.equal(storage.head('digest/file.bin'), undefined);
  const right = await putViaUrl('digest/file.bin', data, { 'Content-MD5': md5(data).toString('base64') });
  assert.equal(right.status, 200);
  assert.equal(storage.head('digest/file.bin')?.size, data.length);
});

test('a PUT over 5 GiB is refused from its Content-Length alone (EntityTooLarge) and the connection closed', async () => {
  const url = new URL(await storage.presign('PUT', 'refuse/huge.bin', { expiresIn: 60 }));
  const answer = await rawExchange(
    url,
    `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${6 * 1024 * MiB}\r\n\r\n`,
  );
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /<Code>EntityTooLarge<\/Code>/);
  assert.match(answer, /\r\nconnection: close\r\n/i);
});

test('Expect: 100-continue: a refused PUT is answered before any body is sent; an accepted one gets the 100 first', async () => {
  const data = randomBytes(10_000);
  const url = new URL(await storage.presign('PUT', 'continue/file.bin', { expiresIn: 60 }));
  const head = (search: string): string =>
    `PUT ${url.pathname}${search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${data.length}\r\nExpect: 100-continue\r\n\r\n`;

  const forged = url.search.replace(/X-Amz-Signature=[0-9a-f]+/, `X-Amz-Signature=${'0'.repeat(64)}`);
  const refused = await rawExchange(url, head(forged));
  assert.match(refused, /^HTTP\/1\.1 403 /);
  assert.doesNotMatch(refused, /100 Continue/);
  assert.match(refused, /<Code>SignatureDoesNotMatch<\/Code>/);

  const socket = connect(Number(url.port), url.hostname);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const waitFor = async (pattern: RegExp): Promise<void> => {
    while (!pattern.test(received)) await sleep(5);
  };
  socket.write(head(url.search));
  await waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
  socket.write(data);
  await waitFor(/HTTP\/1\.1 200 OK[\s\S]*\r\n\r\n$/);
  socket.destroy();
  assert.match(received, new RegExp(`etag: "${md5(data).toString('hex')}"`, 'i'));
  assert.equal(storage.head('continue/file.bin')?.size, data.length);
});

test('an empty PUT stores an empty object', async () => {
  const put = await putViaUrl('empty/zero.bin', Buffer.alloc(0));
  assert.equal(put.status, 200);
  assert.equal(put.headers['etag'], `"${md5(Buffer.alloc(0)).toString('hex')}"`);
  const got = await getViaUrl('empty/zero.bin');
  assert.equal(got.status, 200);
  assert.equal(got.body.length, 0);
});

test('a client that sends fewer bytes than its Content-Length leaves nothing stored', async () => {
  const ownDir = await mkdtemp(path.join(os.tmpdir(), 'ami-storage-abort-'));
  const own = await startStorage(ownDir, new FaultInjector());
  try {
    const url = new URL(await own.presign('PUT', 'abort/partial.bin', { expiresIn: 60 }));
    const socket = connect(Number(url.port), url.hostname);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 1000000\r\n\r\n`);
    socket.write(randomBytes(300_000));
    await sleep(100);
    socket.destroy();
    await sleep(300);
    assert.equal(own.head('abort/partial.bin'), undefined);
    assert.deepEqual(await filesIn('objects', ownDir), []);
  } finally {
    await own.close();
    await rm(ownDir, { recursive: true, force: true });
  }
});

test('multipart: a small non-final part is EntityTooSmall, a wrong ETag or missing part InvalidPart, order and emptiness checked', async () => {
  const key = 'multi/small.bin';
  const uploadId = storage.createMultipartUpload(key);
  const etags: string[] = [];
  for (const partNumber of [1, 2]) {
    const put = await send(await storage.presignPart(key, uploadId, partNumber, 60), 'PUT', { body: randomBytes(MiB) });
    assert.equal(put.status, 200);
    etags.push(String(put.headers['etag']));
  }
  const [first = '', second = ''] = etags;
  const refusal = (code: string) => (error: unknown) => error instanceof StorageError && error.code === code && error.status === 400;

  await assert.rejects(
    storage.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: first }, { partNumber: 2, etag: second }]),
    refusal('EntityTooSmall'),
  );
  await assert.rejects(
    storage.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: `"${'0'.repeat(32)}"` }]),
    refusal('InvalidPart'),
  );
  await assert.rejects(
    storage.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: first }, { partNumber: 3, etag: second }]),
    refusal('InvalidPart'),
  );
  await assert.rejects(
    storage.completeMultipartUpload(key, uploadId, [{ partNumber: 2, etag: second }, { partNumber: 1, etag: first }]),
    refusal('InvalidPartOrder'),
  );
  await assert.rejects(storage.completeMultipartUpload(key, uploadId, []), refusal('MalformedXML'));
  await assert.rejects(
    storage.completeMultipartUpload(key, 'no-such-upload', [{ partNumber: 1, etag: first }]),
    (error: unknown) => error instanceof StorageError && error.code === 'NoSuchUpload' && error.status === 404,
  );
  // Refusals leave the upload open, as S3 does; a single small part is a valid object.
  assert.equal(storage.multipartUploadsInProgress(), 1);
  const stored = await storage.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: first }]);
  assert.equal(stored.size, MiB);
  assert.match(stored.etag, /^"[0-9a-f]{32}-1"$/);
  assert.equal(storage.multipartUploadsInProgress(), 0);
  assert.deepEqual(await filesIn('parts'), []);
});

test('multipart over HTTP: part numbers outside 1..10000, an unknown uploadId, a part sent again replaces it', async () => {
  const key = 'multi/numbers.bin';
  const uploadId = storage.createMultipartUpload(key);
  for (const bad of [0, 10_001]) {
    assertS3Error(await send(await storage.presignPart(key, uploadId, bad, 60), 'PUT', { body: Buffer.from('x') }), 400, 'InvalidArgument');
  }
  assertS3Error(await send(await storage.presignPart(key, 'unknown-upload', 1, 60), 'PUT', { body: Buffer.from('x') }), 404, 'NoSuchUpload');

  const firstTry = await send(await storage.presignPart(key, uploadId, 1, 60), 'PUT', { body: Buffer.from('first') });
  const secondTry = await send(await storage.presignPart(key, uploadId, 1, 60), 'PUT', { body: Buffer.from('second') });
  assert.equal((await filesIn('parts')).length, 1);
  await assert.rejects(
    storage.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: String(firstTry.headers['etag']) }]),
    (error: unknown) => error instanceof StorageError && error.code === 'InvalidPart',
  );
  await storage.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: String(secondTry.headers['etag']) }]);
  assert.equal((await getViaUrl(key)).body.toString(), 'second');
});

test('abort removes the upload and its parts; later parts are NoSuchUpload', async () => {
  const key = 'multi/aborted.bin';
  const uploadId = storage.createMultipartUpload(key);
  for (const partNumber of [1, 2, 3]) {
    assert.equal((await send(await storage.presignPart(key, uploadId, partNumber, 60), 'PUT', { body: randomBytes(100_000) })).status, 200);
  }
  assert.equal((await filesIn('parts')).length, 3);
  assert.equal(storage.multipartUploadsInProgress(), 1);

  await storage.abortMultipartUpload(key, uploadId);
  assert.equal(storage.multipartUploadsInProgress(), 0);
  assert.deepEqual(await filesIn('parts'), []);
  assertS3Error(await send(await storage.presignPart(key, uploadId, 4, 60), 'PUT', { body: Buffer.from('late') }), 404, 'NoSuchUpload');
  await assert.rejects(storage.abortMultipartUpload(key, uploadId), (error: unknown) => error instanceof StorageError && error.code === 'NoSuchUpload');
  assert.equal(storage.head(key), undefined);
});

test('fault: storage PUT 500 InternalError (body consumed, nothing stored), then the retry succeeds', async () => {
  faults.update({ storagePutFailRate: 1, storagePutModes: ['500'] });
  const data = randomBytes(2 * MiB);
  const url = await storage.presign('PUT', 'fault/500.bin', { expiresIn: 60 });
  assertS3Error(await send(url, 'PUT', { body: data }), 500, 'InternalError');
  assert.equal(storage.head('fault/500.bin'), undefined);
  faults.reset();
  assert.equal((await send(url, 'PUT', { body: data })).status, 200);
  assert.equal(storage.head('fault/500.bin')?.size, data.length);
});

test('fault: storage PUT 503 SlowDown, for parts too', async () => {
  faults.update({ storagePutFailRate: 1, storagePutModes: ['503'] });
  assertS3Error(await putViaUrl('fault/503.bin', randomBytes(1000)), 503, 'SlowDown');
  const uploadId = storage.createMultipartUpload('fault/503-multi.bin');
  const url = await storage.presignPart('fault/503-multi.bin', uploadId, 1, 60);
  assertS3Error(await send(url, 'PUT', { body: randomBytes(1000) }), 503, 'SlowDown');
  assert.deepEqual(await filesIn('parts'), []);
  await storage.abortMultipartUpload('fault/503-multi.bin', uploadId);
  assert.equal(storage.head('fault/503.bin'), undefined);
});

test('fault: storage PUT reset drops the connection mid-body and stores nothing', async () => {
  faults.update({ storagePutFailRate: 1, storagePutModes: ['reset'] });
  const url = await storage.presign('PUT', 'fault/reset.bin', { expiresIn: 60 });
  await assert.rejects(send(url, 'PUT', { body: randomBytes(4 * MiB) }));
  assert.equal(storage.head('fault/reset.bin'), undefined);
  faults.reset();
  assert.equal((await send(url, 'PUT', { body: randomBytes(1000) })).status, 200);
});

test('fault: storage GET reset sends the headers and part of the body, then drops the connection', async () => {
  const data = randomBytes(4 * MiB);
  await storage.putObject('fault/get-reset.bin', data, 'application/octet-stream');
  faults.update({ storageGetResetRate: 1 });
  const response = await request(await storage.presign('GET', 'fault/get-reset.bin', { expiresIn: 60 }));
  assert.equal(response.statusCode, 200);
  assert.equal(response.headers['content-length'], String(data.length));
  const received: Buffer[] = [];
  await assert.rejects(async () => {
    for await (const chunk of response.body) received.push(chunk as Buffer);
  });
  const got = Buffer.concat(received);
  assert.ok(got.length > 0 && got.length < data.length, `received ${got.length} of ${data.length} bytes`);
  assert.deepEqual(got, data.subarray(0, got.length));

  // Resuming with Range from where it broke gets the rest.
  faults.reset();
  const rest = await getViaUrl('fault/get-reset.bin', { Range: `bytes=${got.length}-` });
  assert.equal(rest.status, 206);
  assert.equal(sha256(Buffer.concat([got, rest.body])), sha256(data));
});

test('fault: latency delays every storage response', async () => {
  await storage.putObject('fault/slow.bin', Buffer.from('slow'), 'text/plain');
  const url = await storage.presign('GET', 'fault/slow.bin', { expiresIn: 60 });
  faults.update({ latencyMs: 300 });
  const started = performance.now();
  const got = await send(url, 'GET');
  const elapsed = performance.now() - started;
  assert.equal(got.body.toString(), 'slow');
  assert.ok(elapsed >= 290, `answered after ${elapsed.toFixed(0)} ms`);
  faults.reset();
  const quick = performance.now();
  await send(url, 'GET');
  assert.ok(performance.now() - quick < 250);
});

test('in-process: putObject from a Buffer, a file path and a stream; createReadStream with a clamped range', async () => {
  const data = randomBytes(200_000);
  const sourceFile = path.join(dir, 'seed-source.bin');
  await writeFile(sourceFile, data);
  const fromBuffer = await storage.putObject('seed/buffer.bin', data, 'application/octet-stream');
  const fromPath = await storage.putObject('seed/path.bin', sourceFile, 'application/octet-stream');
  const fromStream = await storage.putObject('seed/stream.bin', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), 'application/octet-stream');
  for (const stored of [fromBuffer, fromPath, fromStream]) {
    assert.equal(stored.etag, `"${md5(data).toString('hex')}"`);
    assert.equal(stored.size, data.length);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of storage.createReadStream('seed/path.bin', { start: 199_990, end: 300_000 })) chunks.push(chunk as Buffer);
  assert.deepEqual(Buffer.concat(chunks), data.subarray(199_990));
  assert.throws(() => storage.createReadStream('seed/none.bin'), (error: unknown) => error instanceof StorageError && error.code === 'NoSuchKey');

  // Replacing a key drops the old file.
  const before = (await filesIn('objects')).length;
  await storage.putObject('seed/buffer.bin', Buffer.from('new'), 'text/plain');
  assert.equal((await filesIn('objects')).length, before);
  assert.equal((await getViaUrl('seed/buffer.bin')).body.toString(), 'new');
});

/** Writes a raw request and collects what comes back until the server closes the connection. */
async function rawExchange(url: URL, head: string): Promise<string> {
  const socket = connect(Number(url.port), url.hostname);
  socket.write(head);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return Buffer.concat(chunks).toString();
}

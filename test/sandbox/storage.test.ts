import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { lookup } from 'node:dns/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { FaultInjector } from '../../src/sandbox/faults.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { ObjectStorage, StorageError } from '../../src/sandbox/storage/object-storage.ts';
import { objectPath, QuerySigner } from '../../src/sandbox/storage/sigv4.ts';
import { api, bearer } from '../helpers/sandbox-api.ts';

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

const oneAuthMessage =
  'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** S3's refusal of a header the presigned URL did not sign, naming them lower-case, comma-separated. */
function assertHeadersNotSigned(answer: Answer, names: string): void {
  assertS3Error(answer, 403, 'AccessDenied');
  const body = answer.body.toString();
  assert.match(body, /<Message>There were headers present in the request which were not signed<\/Message>/);
  assert.match(body, new RegExp(`<HeadersNotSigned>${escapeRegExp(names)}</HeadersNotSigned>`));
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
  assert.equal(put.headers['x-amz-server-side-encryption'], undefined, 'an unencrypted bucket');

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
  // The method is signed: HEAD on a GET URL is refused as S3 does (403, and no body on a HEAD).
  const head = await send(getUrl, 'HEAD');
  assert.equal(head.status, 403);
  assert.equal(head.body.length, 0);
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
  assert.match(both.body.toString(), new RegExp(`<Message>${escapeRegExp(oneAuthMessage)}</Message>`));
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

test('presigned URLs sign host only; an unsigned Content-MD5 or x-amz-* header is 403 HeadersNotSigned, even a right MD5', async (t) => {
  const data = randomBytes(64 * 1024);
  const uploadId = storage.createMultipartUpload('unsigned/part.bin');
  t.after(() => storage.abortMultipartUpload('unsigned/part.bin', uploadId));
  const urls = {
    put: await storage.presign('PUT', 'unsigned/file.bin', { expiresIn: 60 }),
    get: await storage.presign('GET', 'unsigned/file.bin', { expiresIn: 60 }),
    part: await storage.presignPart('unsigned/part.bin', uploadId, 1, 60),
  };
  for (const url of Object.values(urls)) assert.equal(new URL(url).searchParams.get('X-Amz-SignedHeaders'), 'host');

  const rightMd5 = { 'Content-MD5': md5(data).toString('base64') };
  for (const url of [urls.put, urls.part]) {
    const refused = await send(url, 'PUT', { body: data, headers: rightMd5 });
    assertHeadersNotSigned(refused, 'content-md5');
  }
  assertHeadersNotSigned(
    await send(urls.put, 'PUT', { body: data, headers: { 'Content-MD5': rightMd5['Content-MD5'], 'x-amz-meta-shot': 'sh010', 'x-amz-acl': 'public-read' } }),
    'content-md5, x-amz-meta-shot, x-amz-acl',
  );
  assert.equal(storage.head('unsigned/file.bin'), undefined);
  assert.deepEqual(await filesIn('parts'), []);

  // Content-Type is not an x-amz header, and x-amz-content-sha256 is the one x-amz header S3 takes unsigned.
  const accepted = await send(urls.put, 'PUT', {
    body: data,
    headers: { 'Content-Type': 'video/quicktime', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
  });
  assert.equal(accepted.status, 200, accepted.body.toString());
  assertHeadersNotSigned(await send(urls.get, 'GET', { headers: { 'x-amz-request-payer': 'requester' } }), 'x-amz-request-payer');
  assert.equal((await send(urls.get, 'GET')).status, 200);
});

test('a Content-MD5 the URL does sign is checked: a mismatch is BadDigest, a malformed one InvalidDigest, a right one passes', async () => {
  // The site never signs one (its URLs sign host only); a signer with the storage's credentials can.
  const signer = new QuerySigner('us-west-2', credentials);
  const key = 'digest/file.bin';
  const signedFor = (contentMd5: string) =>
    signer.presignUrl({
      method: 'PUT',
      origin: new URL(storage.origin),
      path: objectPath(bucket, key),
      query: {},
      expiresIn: 60,
      signedHeaders: { 'content-md5': contentMd5 },
    });
  const data = randomBytes(64 * 1024);
  const wrong = md5(Buffer.from('something else')).toString('base64');
  const wrongUrl = await signedFor(wrong);
  assert.equal(new URL(wrongUrl).searchParams.get('X-Amz-SignedHeaders'), 'content-md5;host');
  assertS3Error(await send(wrongUrl, 'PUT', { body: data, headers: { 'Content-MD5': wrong } }), 400, 'BadDigest');
  assert.equal(storage.head(key), undefined);
  assertS3Error(await send(await signedFor('not-an-md5'), 'PUT', { body: data, headers: { 'Content-MD5': 'not-an-md5' } }), 400, 'InvalidDigest');
  assert.equal(storage.head(key), undefined);
  const right = md5(data).toString('base64');
  const rightUrl = await signedFor(right);
  // Signed means required: without the header the signature does not hold.
  assertS3Error(await send(rightUrl, 'PUT', { body: data }), 403, 'SignatureDoesNotMatch');
  assert.equal((await send(rightUrl, 'PUT', { body: data, headers: { 'Content-MD5': right } })).status, 200);
  assert.equal(storage.head(key)?.size, data.length);
});

test('an SSE-KMS bucket: PUTs answer x-amz-server-side-encryption and ETags that are hex but not the MD5; completion takes them', async () => {
  const ownDir = await mkdtemp(path.join(os.tmpdir(), 'ami-storage-kms-'));
  const kms = new ObjectStorage({ dir: ownDir, bucket, region: 'us-west-2', credentials, faults: new FaultInjector(), serverSideEncryption: 'aws:kms' });
  await kms.listen(0);
  try {
    const data = randomBytes(100_000);
    const put = await send(await kms.presign('PUT', 'kms/single.bin', { expiresIn: 60 }), 'PUT', { body: data });
    assert.equal(put.status, 200);
    assert.equal(put.headers['x-amz-server-side-encryption'], 'aws:kms');
    assert.match(String(put.headers['etag']), /^"[0-9a-f]{32}"$/);
    assert.notEqual(put.headers['etag'], `"${md5(data).toString('hex')}"`);
    const got = await send(await kms.presign('GET', 'kms/single.bin', { expiresIn: 60 }), 'GET');
    assert.deepEqual(got.body, data);
    assert.equal(got.headers['x-amz-server-side-encryption'], 'aws:kms');
    assert.equal(got.headers['etag'], put.headers['etag']);
    const head = await send(await kms.presign('HEAD', 'kms/single.bin', { expiresIn: 60 }), 'HEAD');
    assert.equal(head.headers['x-amz-server-side-encryption'], 'aws:kms');

    const key = 'kms/multi.bin';
    const uploadId = kms.createMultipartUpload(key);
    const slices = [randomBytes(5 * MiB), randomBytes(1000)];
    const etags: string[] = [];
    for (const [index, slice] of slices.entries()) {
      const part = await send(await kms.presignPart(key, uploadId, index + 1, 60), 'PUT', { body: slice });
      assert.equal(part.headers['x-amz-server-side-encryption'], 'aws:kms');
      assert.match(String(part.headers['etag']), /^"[0-9a-f]{32}"$/);
      assert.notEqual(part.headers['etag'], `"${md5(slice).toString('hex')}"`);
      etags.push(String(part.headers['etag']));
    }
    // The parts' MD5s are not their ETags here: a client that sends them back is refused.
    await assert.rejects(
      kms.completeMultipartUpload(key, uploadId, slices.map((slice, index) => ({ partNumber: index + 1, etag: md5(slice).toString('hex') }))),
      (error: unknown) => error instanceof StorageError && error.code === 'InvalidPart',
    );
    const stored = await kms.completeMultipartUpload(key, uploadId, etags.map((etag, index) => ({ partNumber: index + 1, etag })));
    assert.match(stored.etag, /^"[0-9a-f]{32}-2"$/);
    const whole = await send(await kms.presign('GET', key, { expiresIn: 60 }), 'GET');
    assert.equal(sha256(whole.body), sha256(Buffer.concat(slices)));
  } finally {
    await kms.close();
    await rm(ownDir, { recursive: true, force: true });
  }
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

// The same refusals on the links the sandbox site hands out (../shared/protocol/shotgrid-rest.md, "Upload (direct
// to storage)" and "Download"), as the service meets them.
describe('the sandbox site\'s storage links', () => {
  let site: SandboxSite;
  let token: string;
  let versionIds: number[];
  let nextVersion = 0;

  before(async () => {
    site = await startSandboxSite();
    token = await bearer(site);
    versionIds = site.store.all('Version').map((version) => version.id);
  });
  after(async () => {
    await site.close();
  });
  beforeEach(() => site.faults.reset());

  /** A fresh upload link (part 1 when multipart) on a Version's movie field (the next seeded one), from the site's API. */
  async function beginUpload(on: SandboxSite, multipart = false) {
    const versionId = versionIds[nextVersion++ % versionIds.length];
    assert.ok(versionId !== undefined, 'the seed has Versions');
    const query = `filename=plate.mov${multipart ? '&multipart_upload=true' : ''}`;
    const begin = await api(on, await bearer(on)).get(`/api/v1/entity/versions/${versionId}/sg_uploaded_movie/_upload?${query}`);
    assert.equal(begin.status, 200, begin.body.toString());
    return { versionId, ...(begin.json() as { data: Record<string, unknown>; links: Record<string, string> }) };
  }

  /** The presigned storage GET the site redirects a download to. */
  async function downloadLink(on: SandboxSite, versionId: number): Promise<string> {
    const redirect = await api(on, await bearer(on)).get(`/api/v1/entity/versions/${versionId}/sg_uploaded_movie?alt=original`);
    assert.equal(redirect.status, 302, redirect.body.toString());
    return String(redirect.headers['location']);
  }

  async function uploadedVersion(data: Buffer): Promise<number> {
    const { versionId, data: info, links } = await beginUpload(site);
    const upload = links['upload'] ?? '';
    assert.equal((await send(upload, 'PUT', { body: data, headers: { 'Content-Type': 'video/quicktime' } })).status, 200);
    const complete = await api(site, token).post(links['complete_upload'] ?? '', { upload_info: info, upload_data: {} });
    assert.equal(complete.status, 201, complete.body.toString());
    return versionId;
  }

  test('storage has its own host name: upload, download and thumbnail links are on localhost, the site on 127.0.0.1', async () => {
    const siteUrl = new URL(site.url);
    const storageUrl = new URL(site.storageUrl);
    assert.equal(siteUrl.hostname, '127.0.0.1');
    assert.equal(storageUrl.hostname, 'localhost');
    const { links } = await beginUpload(site);
    const upload = new URL(links['upload'] ?? '');
    assert.notEqual(upload.hostname, siteUrl.hostname, 'the upload link is not on the site\'s host');
    assert.equal(upload.origin, site.storageUrl);

    const data = randomBytes(10_000);
    assert.equal((await send(upload.toString(), 'PUT', { body: data })).status, 200, 'storage answers requests whose Host is localhost:<port>');
    const uploaded = await uploadedVersion(data);
    const download = new URL(await downloadLink(site, uploaded));
    assert.equal(download.origin, site.storageUrl);
    assert.deepEqual((await send(download.toString(), 'GET')).body, data);

    const shot = site.store.all('Shot').find((candidate) => candidate.fields['image']);
    assert.ok(shot, 'a seeded shot has a thumbnail');
    const image = (await api(site, token).get(`/api/v1/entity/shots/${shot.id}?fields=image`)).json().data.attributes.image as string;
    assert.equal(new URL(image).origin, site.storageUrl, 'a seeded thumbnail is ready at once');

    // The signature covers the host: the same link sent to 127.0.0.1 is refused.
    const viaAddress = download.toString().replace('//localhost:', '//127.0.0.1:');
    assertS3Error(await send(viaAddress, 'GET'), 403, 'SignatureDoesNotMatch');
    // Whichever address localhost resolves to here (127.0.0.1, ::1), storage listens there.
    for (const { address } of await lookup('localhost', { all: true })) {
      const answer = await rawExchange(
        new URL(`http://${address.includes(':') ? `[${address}]` : address}:${storageUrl.port}`),
        `GET ${download.pathname}${download.search} HTTP/1.1\r\nHost: ${download.host}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 200 /, `storage on ${address}`);
    }
  });

  test('the storageHost option names the storage host instead', async () => {
    const own = await startSandboxSite({ storageHost: '127.0.0.1' });
    try {
      const { links } = await beginUpload(own);
      assert.equal(new URL(links['upload'] ?? '').hostname, '127.0.0.1');
      assert.equal(new URL(own.storageUrl).hostname, '127.0.0.1');
      assert.equal((await send(links['upload'] ?? '', 'PUT', { body: Buffer.from('x') })).status, 200);
    } finally {
      await own.close();
    }
  });

  test('upload links sign host only: Content-MD5 or x-amz-* is 403 HeadersNotSigned; Content-Length and Content-Type pass', async () => {
    const { links } = await beginUpload(site);
    const upload = links['upload'] ?? '';
    assert.equal(new URL(upload).searchParams.get('X-Amz-SignedHeaders'), 'host');
    const data = randomBytes(50_000);
    assertHeadersNotSigned(await send(upload, 'PUT', { body: data, headers: { 'Content-MD5': md5(data).toString('base64') } }), 'content-md5');
    assertHeadersNotSigned(await send(upload, 'PUT', { body: data, headers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }), 'x-amz-checksum-crc32');
    const accepted = await send(upload, 'PUT', { body: data, headers: { 'Content-Type': 'video/quicktime' } });
    assert.equal(accepted.status, 200, accepted.body.toString());
    assert.equal(accepted.headers['etag'], `"${md5(data).toString('hex')}"`, 'the ETag is the MD5 of the bytes that arrived');

    const multipart = await beginUpload(site, true);
    const part = multipart.links['upload'] ?? '';
    assert.equal(new URL(part).searchParams.get('X-Amz-SignedHeaders'), 'host');
    assertHeadersNotSigned(await send(part, 'PUT', { body: data, headers: { 'Content-MD5': md5(data).toString('base64') } }), 'content-md5');
    const partPut = await send(part, 'PUT', { body: data });
    assert.equal(partPut.headers['etag'], `"${md5(data).toString('hex')}"`);
  });

  test('download links sign host and GET only: HEAD is 403, an unsigned x-amz-* header is 403 HeadersNotSigned', async () => {
    const data = randomBytes(20_000);
    const download = await downloadLink(site, await uploadedVersion(data));
    assert.equal(new URL(download).searchParams.get('X-Amz-SignedHeaders'), 'host');
    const head = await send(download, 'HEAD');
    assert.equal(head.status, 403);
    assert.equal(head.body.length, 0);
    assertHeadersNotSigned(await send(download, 'GET', { headers: { 'x-amz-request-payer': 'requester' } }), 'x-amz-request-payer');
    const ranged = await send(download, 'GET', { headers: { Range: 'bytes=0-0' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-range'], `bytes 0-0/${data.length}`);
  });

  test('an upload link with the Bearer token beside it is 400 InvalidArgument "Only one auth mechanism allowed"', async () => {
    const { links } = await beginUpload(site);
    const refused = await send(links['upload'] ?? '', 'PUT', { body: Buffer.from('x'), headers: { Authorization: `Bearer ${token}` } });
    assertS3Error(refused, 400, 'InvalidArgument');
    assert.match(refused.body.toString(), new RegExp(`<Message>${escapeRegExp(oneAuthMessage)}</Message>`));
  });

  test('a chunked PUT (no Content-Length) to an upload link is 411 MissingContentLength', async () => {
    const { links } = await beginUpload(site);
    const body = Readable.from([randomBytes(1000), randomBytes(1000)]);
    assertS3Error(await send(links['upload'] ?? '', 'PUT', { body }), 411, 'MissingContentLength');
  });

  test('an expired link is 403 AccessDenied "Request has expired"', async () => {
    const download = await downloadLink(site, await uploadedVersion(Buffer.from('soon gone')));
    site.faults.update({ signedUrlTtlSeconds: 0 });
    const expired = await send(download, 'GET');
    assertS3Error(expired, 403, 'AccessDenied');
    assert.match(expired.body.toString(), /<Message>Request has expired<\/Message>/);
  });

  test('storageEncryption aws:kms: ETags are not MD5s, the header says so, and the site completes with those ETags', async () => {
    const kms = await startSandboxSite({ storageEncryption: 'aws:kms' });
    try {
      const kmsToken = await bearer(kms);
      const { versionId, data: info, links } = await beginUpload(kms, true);
      const slices = [randomBytes(5 * MiB), randomBytes(12_345)];
      const etags: string[] = [];
      let link = links['upload'] ?? '';
      for (const [index, slice] of slices.entries()) {
        if (index > 0) link = (await api(kms, kmsToken).get(links['get_next_part'] ?? '')).json().links.upload;
        const put = await send(link, 'PUT', { body: slice, headers: { 'Content-Type': 'video/quicktime' } });
        assert.equal(put.status, 200, put.body.toString());
        assert.equal(put.headers['x-amz-server-side-encryption'], 'aws:kms');
        assert.match(String(put.headers['etag']), /^"[0-9a-f]{32}"$/);
        assert.notEqual(put.headers['etag'], `"${md5(slice).toString('hex')}"`);
        etags.push(String(put.headers['etag']));
      }
      const complete = await api(kms, kmsToken).post(links['complete_upload'] ?? '', { upload_info: { ...info, etags }, upload_data: {} });
      assert.equal(complete.status, 201, complete.body.toString());
      const got = await send(await downloadLink(kms, versionId), 'GET');
      assert.equal(got.status, 200);
      assert.equal(got.headers['x-amz-server-side-encryption'], 'aws:kms');
      assert.equal(sha256(got.body), sha256(Buffer.concat(slices)));

      const single = await beginUpload(kms);
      const data = randomBytes(1000);
      const put = await send(single.links['upload'] ?? '', 'PUT', { body: data });
      assert.equal(put.headers['x-amz-server-side-encryption'], 'aws:kms');
      assert.match(String(put.headers['etag']), /^"[0-9a-f]{32}"$/);
      assert.notEqual(put.headers['etag'], `"${md5(data).toString('hex')}"`);
    } finally {
      await kms.close();
    }
  });
});

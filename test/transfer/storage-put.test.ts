import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { FaultInjector } from '../../src/sandbox/faults.ts';
import { ObjectStorage } from '../../src/sandbox/storage/object-storage.ts';
import { putPart, StoragePutError } from '../../src/transfer/storage-put.ts';
import { md5, sha256, testBytes } from '../helpers/sandbox-api.ts';

// putPart against the sandbox's strict S3 stand-in over real sockets: presigned URLs that sign host only (an
// unsigned Content-MD5 would be refused 403), ETags that are the MD5 except in an encrypting bucket.

let storage: ObjectStorage;
let encrypted: ObjectStorage;
let dir: string;
const faults = new FaultInjector();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'storage-put-'));
  const credentials = { accessKeyId: 'AKIATEST', secretAccessKey: 'secret' };
  storage = new ObjectStorage({ dir: join(dir, 'plain'), bucket: 'put-tests', region: 'us-west-2', credentials, faults });
  encrypted = new ObjectStorage({ dir: join(dir, 'kms'), bucket: 'put-kms', region: 'us-west-2', credentials, faults, serverSideEncryption: 'aws:kms' });
  await storage.listen(0);
  await encrypted.listen(0);
});
after(async () => {
  await storage.close();
  await encrypted.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => faults.reset());

async function stored(key: string, from = storage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of from.createReadStream(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const base64Md5 = (bytes: Buffer) => Buffer.from(md5(bytes), 'hex').toString('base64');

/** Storage that stores a byte other than the one sent: what a flipped bit on the way would look like. */
function corrupting(bytes: Buffer): Readable {
  const copy = Buffer.from(bytes);
  copy[copy.length >> 1]! ^= 0xff;
  return Readable.from([copy]);
}

test('held bytes go with Content-Length and Content-Type only, and the ETag is checked against their MD5', async () => {
  const bytes = testBytes(300_000, 1);
  const result = await putPart(await storage.presign('PUT', 'a', { expiresIn: 60 }), { bytes }, { contentType: 'video/quicktime' });
  assert.equal(result.md5, md5(bytes));
  assert.equal(result.etag, `"${md5(bytes)}"`);
  assert.equal(result.etagIsMd5, true);
  assert.equal(sha256(await stored('a')), sha256(bytes));
  assert.equal(storage.head('a')?.contentType, 'video/quicktime');
});

test('a type the site gave with the link (ftrack signs it) is the one sent, whatever the caller would send', async () => {
  const bytes = testBytes(10_000, 4);
  const location = { url: await storage.presign('PUT', 'typed', { expiresIn: 60 }), headers: { 'Content-Type': 'video/mp4' }, receipt: 'etag' as const };
  await putPart(location, { bytes }, { contentType: 'application/octet-stream' });
  assert.equal(storage.head('typed')?.contentType, 'video/mp4');
});

test('streamed bytes pass through unhashed; the ETag proves them against the sender digest', async () => {
  const bytes = testBytes(2_000_000, 2);
  const stream = Readable.from([bytes.subarray(0, 700_000), bytes.subarray(700_000)]);
  const result = await putPart(await storage.presign('PUT', 'b', { expiresIn: 60 }), { stream, size: bytes.length, md5: base64Md5(bytes) });
  assert.equal(result.md5, md5(bytes));
  assert.equal(sha256(await stored('b')), sha256(bytes));
});

test('streamed bytes without a sender digest are hashed on the way and the ETag checked', async () => {
  const bytes = testBytes(1_500_000, 6);
  const result = await putPart(await storage.presign('PUT', 'e', { expiresIn: 60 }), { stream: Readable.from([bytes]), size: bytes.length });
  assert.equal(result.md5, md5(bytes));
  assert.equal(result.etag, `"${md5(bytes)}"`);
});

test('bytes that are not what the sender hashed: the ETag gives them away, a corrupted part to send again', async () => {
  const bytes = testBytes(100_000, 3);
  await assert.rejects(putPart(await storage.presign('PUT', 'c', { expiresIn: 60 }), { stream: corrupting(bytes), size: bytes.length, md5: base64Md5(bytes) }), (error: unknown) => {
    assert.ok(error instanceof StoragePutError);
    assert.equal(error.code, 'ChecksumMismatch');
    assert.equal(error.corrupted, true);
    return true;
  });
});

describe('an encrypting bucket (SSE-KMS): the ETag is not the MD5', () => {
  test('unhashed streamed bytes cannot be proven: refused as unverifiable, to be sent again hashed', async () => {
    const bytes = testBytes(200_000, 8);
    await assert.rejects(putPart(await encrypted.presign('PUT', 'k1', { expiresIn: 60 }), { stream: Readable.from([bytes]), size: bytes.length, md5: base64Md5(bytes) }), (error: unknown) => {
      assert.ok(error instanceof StoragePutError);
      assert.equal(error.code, 'Unverifiable');
      assert.equal(error.retryable, true);
      return true;
    });
  });

  test('hashed on the way, they are checked against the sender digest', async () => {
    const bytes = testBytes(200_000, 9);
    const result = await putPart(await encrypted.presign('PUT', 'k2', { expiresIn: 60 }), { stream: Readable.from([bytes]), size: bytes.length, md5: base64Md5(bytes), hash: true });
    assert.equal(result.etagIsMd5, false);
    assert.notEqual(result.etag, `"${md5(bytes)}"`);
    assert.equal(sha256(await stored('k2', encrypted)), sha256(bytes));
    await assert.rejects(
      putPart(await encrypted.presign('PUT', 'k3', { expiresIn: 60 }), { stream: corrupting(bytes), size: bytes.length, md5: base64Md5(bytes), hash: true }),
      (error: unknown) => error instanceof StoragePutError && error.corrupted,
    );
  });
});

test('storage faults are classified: 503 SlowDown and resets are retryable, an expired URL asks for a new one', async () => {
  const bytes = testBytes(50_000, 5);
  const url = await storage.presign('PUT', 'd', { expiresIn: 60 });
  faults.update({ storagePutFailCount: 1, storagePutModes: ['503'] });
  await assert.rejects(putPart(url, { bytes }), (error: unknown) => error instanceof StoragePutError && error.code === 'SlowDown' && error.retryable);
  faults.update({ storagePutFailCount: 1, storagePutModes: ['reset'] });
  await assert.rejects(putPart(url, { bytes }), (error: unknown) => error instanceof StoragePutError && error.code === 'Network' && error.retryable);
  faults.update({ signedUrlTtlSeconds: 0 });
  await assert.rejects(putPart(url, { bytes }), (error: unknown) => error instanceof StoragePutError && error.expired && error.retryable);
  faults.reset();
  assert.equal((await putPart(url, { bytes })).md5, md5(bytes));
});

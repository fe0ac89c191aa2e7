import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, beforeEach, test } from 'node:test';
import { FaultInjector } from '../../src/sandbox/faults.ts';
import { ObjectStorage } from '../../src/sandbox/storage/object-storage.ts';
import { putPart, StoragePutError } from '../../src/transfer/storage-put.ts';
import { md5, sha256, testBytes } from '../helpers/sandbox-api.ts';

// putPart against the sandbox's strict S3 stand-in over real sockets.

let storage: ObjectStorage;
let dir: string;
const faults = new FaultInjector();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'storage-put-'));
  storage = new ObjectStorage({ dir, bucket: 'put-tests', region: 'us-west-2', credentials: { accessKeyId: 'AKIATEST', secretAccessKey: 'secret' }, faults });
  await storage.listen(0);
});
after(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => faults.reset());

async function stored(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of storage.createReadStream(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('held bytes go with Content-MD5 and the ETag is checked', async () => {
  const bytes = testBytes(300_000, 1);
  const result = await putPart(await storage.presign('PUT', 'a', { expiresIn: 60 }), { bytes });
  assert.equal(result.md5, md5(bytes));
  assert.equal(result.etag, `"${md5(bytes)}"`);
  assert.equal(sha256(await stored('a')), sha256(bytes));
});

test('streamed bytes pass through with the sender digest, which storage checks', async () => {
  const bytes = testBytes(2_000_000, 2);
  const contentMd5 = Buffer.from(md5(bytes), 'hex').toString('base64');
  const stream = Readable.from([bytes.subarray(0, 700_000), bytes.subarray(700_000)]);
  const result = await putPart(await storage.presign('PUT', 'b', { expiresIn: 60 }), { stream, size: bytes.length, contentMd5 });
  assert.equal(result.md5, md5(bytes));
  assert.equal(sha256(await stored('b')), sha256(bytes));
});

test('streamed bytes without a sender digest are hashed on the way and the ETag checked', async () => {
  const bytes = testBytes(1_500_000, 6);
  const result = await putPart(await storage.presign('PUT', 'e', { expiresIn: 60 }), { stream: Readable.from([bytes]), size: bytes.length });
  assert.equal(result.md5, md5(bytes));
  assert.equal(result.etag, `"${md5(bytes)}"`);
});

test('bytes that do not match the sender digest are refused by storage and not retryable', async () => {
  const bytes = testBytes(100_000, 3);
  const wrong = Buffer.from(md5(testBytes(100_000, 4)), 'hex').toString('base64');
  await assert.rejects(putPart(await storage.presign('PUT', 'c', { expiresIn: 60 }), { stream: Readable.from([bytes]), size: bytes.length, contentMd5: wrong }), (error: unknown) => {
    assert.ok(error instanceof StoragePutError);
    assert.equal(error.code, 'BadDigest');
    assert.equal(error.retryable, false);
    return true;
  });
  assert.equal(storage.head('c'), undefined);
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

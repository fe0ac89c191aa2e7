import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { FaultInjector } from '../../src/sandbox/faults.ts';
import { ObjectStorage } from '../../src/sandbox/storage/object-storage.ts';
import { DownloadError, openDownload } from '../../src/transfer/download-source.ts';
import { sha256, testBytes } from '../helpers/sandbox-api.ts';

// Downloads from the sandbox's strict storage: resumed with Range after drops, re-signed after expiry, and
// failing visibly when the file cannot be had whole.

let storage: ObjectStorage;
let dir: string;
const faults = new FaultInjector();
const bytes = testBytes(9 * 1024 * 1024 + 17, 77);
const fast = { attempts: 5, baseDelayMs: 5, maxDelayMs: 20 };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'download-source-'));
  storage = new ObjectStorage({ dir, bucket: 'download-tests', region: 'us-west-2', credentials: { accessKeyId: 'AKIATEST', secretAccessKey: 'secret' }, faults });
  await storage.listen(0);
  await storage.putObject('plate.exr', bytes, 'image/x-exr');
});
after(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => faults.reset());

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const locate = async () => ({ url: await storage.presign('GET', 'plate.exr', { expiresIn: 60 }) });

test('a plain download yields exactly the stored bytes', async () => {
  assert.equal(sha256(await collect(openDownload({ locate, size: bytes.length, retry: fast }))), sha256(bytes));
});

test('connections dropped mid-body are resumed with Range from where they stopped', async () => {
  faults.update({ storageGetResetCount: 3 });
  const retries: number[] = [];
  const body = await collect(openDownload({ locate, size: bytes.length, retry: fast, onRetry: (_reason, received) => retries.push(received) }));
  assert.equal(sha256(body), sha256(bytes));
  assert.equal(retries.length, 3);
  assert.ok(retries.some((received) => received > 0), 'resumed part-way, not from the start');
});

test('an expired signature is signed afresh', async () => {
  let calls = 0;
  const expiring = async () => {
    calls += 1;
    const url = await storage.presign('GET', 'plate.exr', { expiresIn: 60 });
    return { url: calls === 1 ? url.replace(/X-Amz-Signature=[0-9a-f]+/, 'X-Amz-Signature=' + '0'.repeat(64)) : url };
  };
  assert.equal(sha256(await collect(openDownload({ locate: expiring, size: bytes.length, retry: fast }))), sha256(bytes));
  assert.equal(calls, 2);
});

test('a file shorter or longer than stated, or never answering, fails the stream', async () => {
  await assert.rejects(collect(openDownload({ locate, size: bytes.length + 10, retry: fast })), DownloadError);
  await assert.rejects(collect(openDownload({ locate, size: bytes.length - 10, retry: fast })), /larger than/);
  faults.update({ storageGetResetRate: 1 });
  await assert.rejects(collect(openDownload({ locate, size: bytes.length, retry: fast })), /could not be fetched after 5 attempts/);
});

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { fanOut } from '../../src/transfer/fan-out.ts';
import { sha256, testBytes } from '../helpers/sandbox-api.ts';

async function collect(stream: Readable, delayMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    if (delayMs) await sleep(delayMs);
  }
  return Buffer.concat(chunks);
}

test('every branch gets every byte; the source is read once, at the slowest branch pace', async () => {
  const bytes = testBytes(3_000_000, 8);
  let reads = 0;
  const source = Readable.from((function* () {
    for (let offset = 0; offset < bytes.length; offset += 65_536) {
      reads += 1;
      yield bytes.subarray(offset, offset + 65_536);
    }
  })());
  const [a, b, c] = fanOut(source, 3);
  const results = await Promise.all([collect(a!), collect(b!, 1), collect(c!)]);
  for (const result of results) assert.equal(sha256(result), sha256(bytes));
  assert.equal(reads, Math.ceil(bytes.length / 65_536));
});

test('a failed branch is dropped and the others finish', async () => {
  const bytes = testBytes(2_000_000, 9);
  const [a, b] = fanOut(Readable.from([bytes.subarray(0, 1_000_000), bytes.subarray(1_000_000)]), 2);
  a!.destroy();
  assert.equal(sha256(await collect(b!)), sha256(bytes));
});

test('a source error reaches every branch', async () => {
  const source = new Readable({ read() {} });
  const branches = fanOut(source, 2);
  source.push(Buffer.from('partial'));
  setImmediate(() => source.destroy(new Error('client went away')));
  await Promise.all(branches.map((branch) => assert.rejects(collect(branch), /client went away/)));
});

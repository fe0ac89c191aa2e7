import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setImmediate } from 'node:timers/promises';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { planArchive, type PlannedEntry } from '../../../src/transfer/zip/zip-plan.ts';
import { writeZipArchive, ZipEntrySizeError } from '../../../src/transfer/zip/zip-writer.ts';
import { patternBytes } from './archive-checks.ts';

// The writer's stream behaviour, in memory. The archives themselves are judged by real readers in
// zip-archives.test.ts and zip-big-entry.test.ts.

/** What a pipe would have sent ('data' events) before the stream ended or failed. */
async function sent(stream: Readable): Promise<{ chunks: Uint8Array[]; error: unknown }> {
  const chunks: Uint8Array[] = [];
  stream.on('data', (chunk: Uint8Array) => chunks.push(chunk));
  try {
    await finished(stream);
    return { chunks, error: null };
  } catch (error) {
    return { chunks, error };
  }
}

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

test('yields exactly the planned bytes, passing source chunks on without copying them', async () => {
  const data = [patternBytes(100_000, 1), patternBytes(3, 2)];
  const chunks = [data[0]!.subarray(0, 65_536), data[0]!.subarray(65_536), data[1]!];
  const plan = planArchive([
    { name: 'one.bin', size: 100_000 },
    { name: 'two.bin', size: 3 },
  ]);
  // 'data' events, as a pipe reads it: an async iterator would join buffered chunks.
  const { chunks: yielded, error } = await sent(writeZipArchive(plan, (entry) => (entry.index === 0 ? chunks.slice(0, 2) : chunks.slice(2))));
  assert.equal(error, null);
  for (const chunk of chunks) assert.ok(yielded.includes(chunk), 'the source chunk itself is passed on');
  const archive = Buffer.concat(yielded);
  assert.equal(archive.length, plan.totalSize);
  // Spot checks of the layout; the readers check the rest.
  const second = plan.entries[1]!;
  assert.equal(archive.readUInt32LE(second.localHeaderOffset), 0x04034b50);
  assert.deepEqual(archive.subarray(second.dataOffset, second.dataDescriptorOffset), data[1]);
  assert.equal(archive.readUInt32LE(second.dataDescriptorOffset), 0x08074b50);
  assert.equal(archive.readUInt32LE(second.dataDescriptorOffset + 4), crc32(data[1]!));
  assert.equal(archive.readUInt32LE(plan.centralDirectoryOffset), 0x02014b50);
  assert.equal(archive.readUInt32LE(plan.totalSize - 22), 0x06054b50);
});

test('reads a source only as fast as the consumer pulls, and opens each source when its turn comes', async () => {
  const chunk = Buffer.alloc(1024, 7);
  let produced = 0;
  const opened: number[] = [];
  const plan = planArchive([
    { name: 'a', size: 1000 * 1024 },
    { name: 'b', size: 1024 },
  ]);
  const archive = writeZipArchive(plan, (entry: PlannedEntry) => {
    opened.push(entry.index);
    let left = entry.size / 1024;
    return new Readable({
      highWaterMark: 1024,
      read() {
        produced += 1;
        this.push(left-- > 0 ? chunk : null);
      },
    });
  });
  await setImmediate();
  assert.deepEqual(opened, [], 'nothing is opened before the consumer asks');
  archive.read(0);
  for (let tick = 0; tick < 20; tick++) await setImmediate();
  assert.deepEqual(opened, [0]);
  // The archive's buffer (64 KiB) and the source's own are full: the rest waits for the consumer.
  assert.ok(produced > 0 && produced < 200, `${produced} of 1,000 chunks read ahead of a consumer that reads nothing`);
  await drain(archive);
  assert.deepEqual(opened, [0, 1]);
});

test('a consumer that stops early closes the open source', async () => {
  const source = new Readable({ read() { this.push(Buffer.alloc(1024)); } });
  const archive = writeZipArchive(planArchive([{ name: 'a', size: 1024 * 1024 }]), () => source);
  let chunks = 0;
  for await (const _chunk of archive) if (++chunks === 2) break;
  assert.equal(archive.destroyed, true);
  assert.equal(source.destroyed, true);
});

test('a source shorter than planned ends the stream with an error naming the entry, before any descriptor', async () => {
  const plan = planArchive([
    { name: 'ok.txt', size: 2 },
    { name: 'short.mov', size: 10 },
  ]);
  const { chunks, error } = await sent(writeZipArchive(plan, (entry) => [Buffer.alloc(entry.index === 0 ? 2 : 9)]));
  assert.ok(
    error instanceof ZipEntrySizeError &&
      error.entryIndex === 1 &&
      error.entryName === 'short.mov' &&
      error.plannedSize === 10 &&
      error.receivedSize === 9 &&
      /only 9 of its planned 10 bytes/.test(error.message),
    String(error),
  );
  assert.equal(Buffer.concat(chunks).length, plan.entries[1]!.dataOffset + 9);
});

test('a source longer than planned errors before a byte past the plan goes out', async () => {
  const plan = planArchive([{ name: 'long.mov', size: 10 }]);
  const { chunks, error } = await sent(writeZipArchive(plan, () => [Buffer.alloc(6), Buffer.alloc(6)]));
  assert.ok(error instanceof ZipEntrySizeError && error.receivedSize === 12 && /more than 12/.test(error.message), String(error));
  assert.equal(Buffer.concat(chunks).length, plan.entries[0]!.dataOffset + 6);
});

test("a source's own error comes through as it is; text instead of bytes is refused", async () => {
  const plan = planArchive([{ name: 'a', size: 10 }]);
  const failure = new Error('connection reset');
  await assert.rejects(
    drain(writeZipArchive(plan, async function* () {
      yield Buffer.alloc(4);
      throw failure;
    })),
    (error: unknown) => error === failure,
  );
  const text = Readable.from(['0123456789'], { objectMode: true });
  await assert.rejects(drain(writeZipArchive(plan, () => text as AsyncIterable<Uint8Array>)), /source must give bytes, got string/);
});

test('an empty archive is 22 bytes', async () => {
  const plan = planArchive([]);
  const archive = await drain(writeZipArchive(plan, () => []));
  assert.equal(archive.length, 22);
  assert.equal(archive.readUInt32LE(0), 0x06054b50);
});

test('resumed from any byte, the archive is the same bytes as the uninterrupted one; known CRCs spare the sources before it', async () => {
  const data = [patternBytes(70_000, 3), patternBytes(0, 4), patternBytes(5_000, 5), patternBytes(130_000, 6)];
  const plan = planArchive(data.map((bytes, index) => ({ name: `f${index}.bin`, size: bytes.length, modified: new Date(2026, 0, 1) })));
  const crcs = new Map<number, number>();
  const full = await drain(writeZipArchive(plan, (entry) => [data[entry.index]!], { onEntryCrc: (index, crc) => crcs.set(index, crc) }));
  assert.equal(full.length, plan.totalSize);
  assert.equal(crcs.size, data.length, 'every CRC reported, for a later resume');
  const boundaries = plan.entries.flatMap((entry) => [entry.localHeaderOffset, entry.dataOffset, entry.dataOffset + 1, entry.endOffset - 1]);
  for (const from of [0, 1, ...boundaries, plan.centralDirectoryOffset, plan.centralDirectoryOffset + 7, plan.totalSize - 1, plan.totalSize]) {
    for (const known of [crcs, new Map<number, number>()]) {
      const opened: number[] = [];
      const resumed = await drain(
        writeZipArchive(
          plan,
          (entry) => {
            opened.push(entry.index);
            return [data[entry.index]!];
          },
          { from, knownCrcs: known },
        ),
      );
      assert.ok(resumed.equals(full.subarray(from)), `from byte ${from} (${known.size} CRCs known)`);
      if (known.size > 0) {
        const before = plan.entries.filter((entry) => entry.dataOffset + entry.size <= from).map((entry) => entry.index);
        assert.ok(!opened.some((index) => before.includes(index)), `no source before byte ${from} opened: ${opened.join(',')}`);
      }
    }
  }
});

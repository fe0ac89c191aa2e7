import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { planArchive } from '../../../src/transfer/zip/zip-plan.ts';
import { writeZipArchive } from '../../../src/transfer/zip/zip-writer.ts';
import { assertFreeSpace, checkWithAllReaders, patternBytes, sha256, withTempFolder, writeToFile } from './archive-checks.ts';

// One entry over 4 GiB, generated on the fly and written to a temp file (removed afterwards), between two small
// ones: the big one needs ZIP64 sizes, the one after it a ZIP64 offset, the archive the ZIP64 end records.
// About 4 GiB of disk and a few tens of seconds, most of it Info-ZIP's CRC check.

const GiB = 1024 ** 3;
const bigSize = 4 * GiB + 1024 ** 2;
// A block of prime length, repeated: every 1 MiB stretch of the entry differs from its neighbours, so bytes
// written at the wrong place would change the CRC. One immutable block, so no per-chunk allocation.
const block = patternBytes(1_048_573, 42);

async function* generated(size: number, onChunk: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for (let left = size; left > 0; left -= block.length) {
    const chunk = left >= block.length ? block : block.subarray(0, left);
    onChunk(chunk);
    yield chunk;
  }
}

test('an entry over 4 GiB: ZIP64 sizes, offsets and end records, accepted by every reader', { timeout: 170_000 }, async () => {
  const small = [Buffer.from('before the big one\n'), Buffer.from('after the big one\n')];
  const plan = planArchive([
    { name: 'Version/v001/before.txt', size: small[0]!.length },
    { name: 'Version/v001/plate 4GiB.exr', size: bigSize },
    { name: 'manifest.csv', size: small[1]!.length },
  ]);
  assert.deepEqual(plan.entries.map((entry) => entry.zip64), [false, true, true]);
  assert.ok(plan.entries[2]!.localHeaderOffset > 0xffffffff && plan.entries[2]!.size < 100);
  assert.equal(plan.zip64EndRecords, true);

  await assertFreeSpace(tmpdir(), plan.totalSize + 256 * 1024 ** 2);
  await withTempFolder(async (folder) => {
    const path = join(folder, 'big.zip');
    let sourceCrc = 0;
    const written = await writeToFile(
      writeZipArchive(plan, (entry) =>
        entry.index === 1 ? generated(bigSize, (chunk) => (sourceCrc = crc32(chunk, sourceCrc))) : [small[entry.index === 0 ? 0 : 1]!],
      ),
      path,
    );
    assert.equal(written, plan.totalSize, 'bytes written equal the planned length');

    // Python reads every entry to its end, which checks each CRC-32; the small ones are hashed as well. A
    // testzip() would read the 4 GiB a second time for the same check, so it is left out here.
    const read = await checkWithAllReaders(path, { testzip: false, hashUpTo: 1024 ** 2 });
    assert.deepEqual(read.map((entry) => [entry.name, entry.size, entry.headerOffset]), plan.entries.map((entry) => [entry.name, entry.size, entry.localHeaderOffset]));
    assert.equal(read[1]!.crc, sourceCrc >>> 0, 'the big entry has the CRC-32 of what the generator made');
    assert.equal(read[0]!.sha256, sha256(small[0]!));
    assert.equal(read[2]!.sha256, sha256(small[1]!));
  });
});

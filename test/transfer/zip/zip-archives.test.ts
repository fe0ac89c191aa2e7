import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { planArchive, type ArchivePlan } from '../../../src/transfer/zip/zip-plan.ts';
import { writeZipArchive, ZipEntrySizeError, type EntrySource } from '../../../src/transfer/zip/zip-writer.ts';
import {
  checkWithAllReaders,
  expectRejectedByAllReaders,
  patternBytes,
  sha256,
  withTempFolder,
  writeToFile,
  type PythonEntry,
} from './archive-checks.ts';

// Archives written to disk and judged by unzip -t, 7z t and Python's zipfile: each must accept it, read every
// entry back with the source's SHA-256, and the file must be exactly as long as planned.

interface TestFile {
  name: string;
  bytes: Buffer;
  modified?: Date;
}

/** Serves a file's bytes the way sources come in practice: a Readable in uneven chunks. */
function sourceOf(bytes: Buffer, chunkSize = 7_919): EntrySource {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += chunkSize) yield bytes.subarray(at, at + chunkSize);
    })(),
    { objectMode: false },
  );
}

async function writeArchive(path: string, files: TestFile[]): Promise<ArchivePlan> {
  const plan = planArchive(files.map(({ name, bytes, modified }) => ({ name, size: bytes.length, modified })));
  const written = await writeToFile(writeZipArchive(plan, (entry) => sourceOf(files[entry.index]!.bytes)), path);
  assert.equal(written, plan.totalSize, 'bytes written equal the planned length');
  return plan;
}

function assertSameFiles(read: PythonEntry[], files: TestFile[], plan: ArchivePlan): void {
  assert.equal(read.length, files.length);
  for (const [i, entry] of read.entries()) {
    const file = files[i]!;
    assert.equal(entry.name, file.name, 'the name reads back identically');
    assert.equal(entry.size, file.bytes.length);
    assert.equal(entry.sha256, sha256(file.bytes), `${file.name}: same bytes as the source`);
    assert.equal(entry.headerOffset, plan.entries[i]!.localHeaderOffset);
    assert.equal(entry.compressType, 0, 'stored');
    assert.equal(entry.flagBits, 0x0808, 'data descriptor and UTF-8 flags');
  }
}

test('a plain few-file archive: every reader accepts it and reads back the same bytes, names and dates', async () => {
  await withTempFolder(async (folder) => {
    const modified = new Date(2026, 10, 23, 9, 41, 7);
    const files: TestFile[] = [
      { name: 'Version/sh010_comp_v003/sh010_comp_v003.mov', bytes: patternBytes(1_500_000, 1), modified },
      { name: 'Version/sh010_comp_v003/notes.txt', bytes: Buffer.from('looks good\n'), modified },
      { name: 'Shot/sh010/thumbnail.jpg', bytes: patternBytes(70_001, 2), modified },
      // Dates the DOS fields cannot hold: clamped there; the archive stays valid.
      { name: 'old.txt', bytes: Buffer.from('1975'), modified: new Date(1975, 0, 1) },
      { name: 'future.txt', bytes: Buffer.from('2100'), modified: new Date(2100, 0, 1) },
      { name: 'far-future.txt', bytes: Buffer.from('2200'), modified: new Date(2200, 0, 1) },
      { name: 'manifest.csv', bytes: Buffer.from('entity,source,size,status\n'), modified },
    ];
    const path = join(folder, 'plain.zip');
    const plan = await writeArchive(path, files);
    const read = await checkWithAllReaders(path);
    assertSameFiles(read, files, plan);
    assert.deepEqual(read[0]!.dateTime, [2026, 11, 23, 9, 41, 6], 'DOS time has 2-second steps');
    assert.deepEqual(read[3]!.dateTime, [1980, 1, 1, 0, 0, 0]);
    assert.deepEqual(read[4]!.dateTime, [2100, 1, 1, 0, 0, 0], 'past 2038: no extended timestamp, DOS date only');
    assert.deepEqual(read[5]!.dateTime, [2107, 12, 31, 23, 59, 58]);
  });
});

test('UTF-8 names (emoji, accents, CJK, both Unicode normal forms) read back identically', async () => {
  await withTempFolder(async (folder) => {
    const names = [
      'Version/café crème/naïve résumé.txt',
      'Shot/日本語/ファイル名.mov',
      'Asset/🎬 shot 010/🍿 popcorn 🎞️.txt',
      'Ελληνικά/Кириллица/עברית.txt',
      'Note/é precomposed.txt',
      'Note/e\u0301 decomposed.txt',
      'Note/中文 한국어 ไทย.txt',
    ];
    const files = names.map((name, i) => ({ name, bytes: patternBytes(1_000 + i, 10 + i) }));
    const path = join(folder, 'utf8.zip');
    const plan = await writeArchive(path, files);
    assertSameFiles(await checkWithAllReaders(path), files, plan);
  });
});

test('empty entries, alone and between others', async () => {
  await withTempFolder(async (folder) => {
    const alone = [{ name: 'empty.txt', bytes: Buffer.alloc(0) }];
    const alonePath = join(folder, 'empty-alone.zip');
    const alonePlan = await writeArchive(alonePath, alone);
    assertSameFiles(await checkWithAllReaders(alonePath), alone, alonePlan);

    const mixed = [
      { name: 'a/empty-first', bytes: Buffer.alloc(0) },
      { name: 'a/data', bytes: patternBytes(5_000, 3) },
      { name: 'a/empty-between', bytes: Buffer.alloc(0) },
      { name: 'a/last', bytes: Buffer.from('x') },
    ];
    const mixedPath = join(folder, 'empty-mixed.zip');
    const mixedPlan = await writeArchive(mixedPath, mixed);
    assertSameFiles(await checkWithAllReaders(mixedPath), mixed, mixedPlan);
  });
});

test('70,000 tiny entries: the ZIP64 end records carry the count', async () => {
  await withTempFolder(async (folder) => {
    const count = 70_000;
    const files = Array.from({ length: count }, (_, i) => ({
      name: `Version/v${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.txt`,
      bytes: Buffer.from(`entry ${i}\n`),
    }));
    const path = join(folder, 'many.zip');
    const plan = planArchive(files.map(({ name, bytes }) => ({ name, size: bytes.length })));
    assert.equal(plan.zip64EndRecords, true);
    assert.ok(plan.entries.every((entry) => !entry.zip64), 'small entries at small offsets stay plain');
    // Sources as plain arrays: the count, not the chunking, is what this case is about.
    const written = await writeToFile(writeZipArchive(plan, (entry) => [files[entry.index]!.bytes]), path);
    assert.equal(written, plan.totalSize);
    assertSameFiles(await checkWithAllReaders(path), files, plan);
  });
});

test('a source shorter or longer than planned: the stream errors and what was written is no valid archive', async () => {
  await withTempFolder(async (folder) => {
    for (const [label, actualSize] of [['short', 99_999], ['long', 100_001]] as const) {
      const files = [
        { name: 'fine.txt', bytes: patternBytes(1_000, 4) },
        { name: `${label}.mov`, bytes: patternBytes(actualSize, 5) },
        { name: 'after.txt', bytes: patternBytes(1_000, 6) },
      ];
      // Planned as 100,000 bytes; the source then gives one fewer or one more.
      const plan = planArchive(files.map(({ name, bytes }) => ({ name, size: name.endsWith('.mov') ? 100_000 : bytes.length })));
      const path = join(folder, `${label}.zip`);
      await assert.rejects(
        writeToFile(writeZipArchive(plan, (entry) => sourceOf(files[entry.index]!.bytes, 4_096)), path),
        (error: unknown) => error instanceof ZipEntrySizeError && error.entryName === `${label}.mov`,
      );
      await expectRejectedByAllReaders(path);
    }
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toDosDateTime, toExtendedTimestamp } from '../../../src/transfer/zip/zip-format.ts';
import { planArchive } from '../../../src/transfer/zip/zip-plan.ts';

const when = new Date(2026, 10, 23, 14, 30, 58); // local time, as DOS dates are

// Record lengths from APPNOTE, spelled out here rather than taken from the code under test.
const localHeader = (nameBytes: number, zip64 = false, timestamp = true) => 30 + nameBytes + (zip64 ? 20 : 0) + (timestamp ? 9 : 0);
const centralHeader = (nameBytes: number, zip64 = false, timestamp = true) => 46 + nameBytes + (zip64 ? 28 : 0) + (timestamp ? 9 : 0);
const descriptor = (zip64 = false) => (zip64 ? 24 : 16);

test('an empty archive is its end record alone', () => {
  const plan = planArchive([]);
  assert.deepEqual(plan, { entries: [], centralDirectoryOffset: 0, centralDirectorySize: 0, zip64EndRecords: false, totalSize: 22 });
});

test('offsets and the total follow from names and sizes alone', () => {
  const plan = planArchive([
    { name: 'a.txt', size: 10, modified: when },
    { name: 'Été/日本.mov', size: 0, modified: when },
  ]);
  const [a, b] = plan.entries;
  const nameB = Buffer.byteLength('Été/日本.mov');
  assert.equal(nameB, 16);
  assert.deepEqual(
    [a!.localHeaderOffset, a!.dataOffset, a!.dataDescriptorOffset, a!.endOffset],
    [0, localHeader(5), localHeader(5) + 10, localHeader(5) + 10 + descriptor()],
  );
  assert.equal(b!.localHeaderOffset, a!.endOffset);
  assert.equal(b!.endOffset, b!.localHeaderOffset + localHeader(nameB) + descriptor());
  assert.equal(plan.centralDirectoryOffset, b!.endOffset);
  assert.equal(plan.centralDirectorySize, centralHeader(5) + centralHeader(nameB));
  assert.equal(plan.totalSize, plan.centralDirectoryOffset + plan.centralDirectorySize + 22);
  assert.equal(plan.zip64EndRecords, false);
  assert.deepEqual([a!.zip64, b!.zip64], [false, false]);
  assert.deepEqual(b!.nameBytes, Buffer.from('Été/日本.mov'));
});

test('an entry of 0xFFFFFFFF bytes or more is ZIP64; one byte less is not', () => {
  const below = planArchive([{ name: 'a', size: 0xfffffffe, modified: when }]);
  assert.equal(below.entries[0]!.zip64, false);
  assert.equal(below.entries[0]!.endOffset, localHeader(1) + 0xfffffffe + descriptor());
  // Past 4 GiB the central directory starts beyond a 4-byte offset: the archive needs the ZIP64 end records.
  assert.equal(below.zip64EndRecords, true);

  const at = planArchive([{ name: 'a', size: 0xffffffff, modified: when }]);
  assert.equal(at.entries[0]!.zip64, true);
  assert.equal(at.entries[0]!.endOffset, localHeader(1, true) + 0xffffffff + descriptor(true));
  assert.equal(at.centralDirectorySize, centralHeader(1, true));
  assert.equal(at.totalSize, at.centralDirectoryOffset + at.centralDirectorySize + 56 + 20 + 22);
});

test('a small entry whose local header starts at 0xFFFFFFFF or later is ZIP64 too', () => {
  const firstSize = 0xffffffff - localHeader(1) - descriptor();
  const plan = planArchive([
    { name: 'a', size: firstSize - 1, modified: when },
    { name: 'b', size: 1, modified: when },
  ]);
  assert.equal(plan.entries[1]!.localHeaderOffset, 0xffffffff - 1);
  assert.equal(plan.entries[1]!.zip64, false);
  const crossing = planArchive([
    { name: 'a', size: firstSize, modified: when },
    { name: 'b', size: 1, modified: when },
  ]);
  assert.equal(crossing.entries[0]!.zip64, false);
  assert.equal(crossing.entries[1]!.localHeaderOffset, 0xffffffff);
  assert.equal(crossing.entries[1]!.zip64, true);
});

test('65,535 entries or more need the ZIP64 end records; 65,534 do not', () => {
  const entries = (count: number) => Array.from({ length: count }, (_, i) => ({ name: `f${i}`, size: 1, modified: when }));
  const fewer = planArchive(entries(65_534));
  assert.equal(fewer.zip64EndRecords, false);
  assert.equal(fewer.totalSize, fewer.centralDirectoryOffset + fewer.centralDirectorySize + 22);
  const many = planArchive(entries(65_535));
  assert.equal(many.zip64EndRecords, true);
  assert.equal(many.totalSize, many.centralDirectoryOffset + many.centralDirectorySize + 56 + 20 + 22);
  assert.ok(many.entries.every((entry) => !entry.zip64));
});

test('names the format cannot carry faithfully are refused; the longest that fits is not', () => {
  const refused: [string, RegExp][] = [
    ['', /empty name/],
    ['x'.repeat(65_536), /65536 UTF-8 bytes/],
    ['é'.repeat(32_768), /65536 UTF-8 bytes/],
    ['bad\ud800.txt', /unpaired surrogate/],
    ['a\0b', /NUL/],
    ['folder/', /directory/],
  ];
  for (const [name, message] of refused) {
    assert.throws(() => planArchive([{ name, size: 0 }]), (error: unknown) => error instanceof RangeError && message.test(error.message), name.slice(0, 20));
  }
  assert.throws(() => planArchive([{ name: 'a', size: 0 }, { name: 'a', size: 1 }]), /entry 1 \("a"\): a duplicate name/);
  assert.equal(planArchive([{ name: 'x'.repeat(65_535), size: 0 }]).entries[0]!.nameBytes.length, 65_535);
  // Case and Unicode normalisation are the caller's business: these are different byte strings.
  assert.equal(planArchive([{ name: 'A', size: 0 }, { name: 'a', size: 0 }, { name: 'é', size: 0 }, { name: 'e\u0301', size: 0 }]).entries.length, 4);
});

test('sizes must be whole numbers of bytes, and dates real dates', () => {
  for (const size of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    assert.throws(() => planArchive([{ name: 'a', size }]), RangeError, String(size));
  }
  assert.throws(() => planArchive([{ name: 'a', size: 1, modified: new Date(Number.NaN) }]), /invalid modification date/);
  assert.throws(() => planArchive([{ name: 'a', size: 2 ** 53 - 100 }]), /too large/);
});

test('DOS dates are local time with 2-second steps, clamped to 1980..2107', () => {
  assert.deepEqual(toDosDateTime(when), { dosDate: ((2026 - 1980) << 9) | (11 << 5) | 23, dosTime: (14 << 11) | (30 << 5) | 29 });
  assert.deepEqual(toDosDateTime(new Date(1975, 5, 1)), { dosDate: (1 << 5) | 1, dosTime: 0 });
  assert.deepEqual(toDosDateTime(new Date(2200, 0, 1)), { dosDate: (127 << 9) | (12 << 5) | 31, dosTime: (23 << 11) | (59 << 5) | 29 });
});

test('the extended timestamp is there while the date fits 32 signed bits of seconds, else left out', () => {
  assert.equal(toExtendedTimestamp(new Date(Date.UTC(2026, 0, 1))), 1_767_225_600);
  assert.equal(toExtendedTimestamp(new Date(Date.UTC(2038, 0, 19, 3, 14, 7))), 0x7fffffff);
  assert.equal(toExtendedTimestamp(new Date(Date.UTC(2038, 0, 19, 3, 14, 8))), undefined);
  const plan = planArchive([{ name: 'late', size: 0, modified: new Date(Date.UTC(2100, 0, 1)) }]);
  assert.equal(plan.entries[0]!.unixTime, undefined);
  assert.equal(plan.totalSize, localHeader(4, false, false) + descriptor() + centralHeader(4, false, false) + 22);
});

test('an entry without a date gets the time of planning', () => {
  const before = Math.floor(Date.now() / 1000);
  const entry = planArchive([{ name: 'a', size: 0 }]).entries[0]!;
  assert.ok(entry.unixTime !== undefined && entry.unixTime >= before && entry.unixTime <= Math.ceil(Date.now() / 1000));
});

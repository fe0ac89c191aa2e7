import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_OBJECT_SIZE, MAX_PARTS, MiB, MIN_PART_SIZE, partRange, planParts } from '../../src/transfer/part-plan.ts';

test('small files are one part; the boundary sizes split as S3 needs', () => {
  assert.deepEqual(planParts(1), { size: 1, partSize: 8 * MiB, partCount: 1, multipart: false });
  assert.equal(planParts(0).partCount, 1);
  assert.equal(planParts(8 * MiB).partCount, 1);
  assert.deepEqual(planParts(8 * MiB + 1), { size: 8 * MiB + 1, partSize: 8 * MiB, partCount: 2, multipart: true });
  const five = planParts(5 * MiB + 1, 5 * MiB);
  assert.equal(five.partCount, 2);
  assert.deepEqual(partRange(five, 2), { start: 5 * MiB, end: 5 * MiB + 1 });
});

test('the part size never drops under 5 MiB and grows so any size fits in 10,000 parts', () => {
  assert.equal(planParts(100 * MiB, 1 * MiB).partSize, MIN_PART_SIZE);
  for (const size of [80_000 * MiB, 500 * 1024 * MiB, 1024 * 1024 * MiB, MAX_OBJECT_SIZE]) {
    const plan = planParts(size);
    assert.ok(plan.partCount <= MAX_PARTS, `${size}: ${plan.partCount} parts`);
    assert.equal(plan.partSize % MiB, 0);
    const last = partRange(plan, plan.partCount);
    assert.equal(last.end, size);
    assert.ok(last.end - last.start > 0);
  }
  assert.throws(() => planParts(MAX_OBJECT_SIZE + 1), RangeError);
  assert.throws(() => planParts(-1), RangeError);
});

test('the ranges tile the file exactly', () => {
  const plan = planParts(37 * MiB + 123, 5 * MiB);
  let expected = 0;
  for (let n = 1; n <= plan.partCount; n++) {
    const { start, end } = partRange(plan, n);
    assert.equal(start, expected);
    if (n < plan.partCount) assert.equal(end - start, 5 * MiB);
    expected = end;
  }
  assert.equal(expected, plan.size);
  assert.throws(() => partRange(plan, plan.partCount + 1), RangeError);
});

test('from a gigabyte on, parts grow with the file (fewer, bigger PUTs hide storage\'s round trips), up to 64 MiB', () => {
  assert.equal(planParts(1024 * MiB).partSize, 8 * MiB, 'a gigabyte: still 8 MiB');
  assert.equal(planParts(2048 * MiB).partSize, 16 * MiB);
  assert.equal(planParts(2048 * MiB).partCount, 128);
  assert.equal(planParts(100 * 1024 * MiB).partSize, 64 * MiB, 'capped');
  assert.ok(planParts(5 * 1024 * 1024 * MiB).partCount <= 10_000, '5 TiB still fits');
});

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { prefetching } from '../../src/transfer/prefetch.ts';

function instrumented(started: number[], index: number): Readable {
  return Readable.from(
    (async function* () {
      started.push(index);
      yield Buffer.from(`entry ${index} `);
      yield Buffer.from('rest');
    })(),
  );
}

test('opening entry i starts the next `ahead` sources, and no further', async () => {
  const items = [0, 1, 2, 3, 4, 5, 6];
  const started: number[] = [];
  const prefetcher = prefetching(items, (i) => instrumented(started, i), 2);
  const first = prefetcher.open(0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started.sort(), [0, 1, 2]);
  let text = '';
  for await (const chunk of first) text += String(chunk);
  assert.equal(text, 'entry 0 rest');
  prefetcher.open(1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([...started].sort(), [0, 1, 2, 3]);
  prefetcher.close();
});

test('close destroys the sources opened ahead but not taken', async () => {
  const sources: Readable[] = [];
  const prefetcher = prefetching([1, 2, 3], () => {
    const source = new Readable({ read() {} });
    sources.push(source);
    return source;
  }, 2);
  prefetcher.open(1);
  prefetcher.close();
  assert.equal(sources.length, 3);
  assert.deepEqual(sources.map((s) => s.destroyed), [false, true, true]);
  assert.throws(() => prefetcher.open(99), /not planned/);
});

test('with a byte budget: many small sources ahead, one big one', async () => {
  const sizes = [10, 10, 10, 10, 10, 1000, 1000, 1000, 10];
  const started: number[] = [];
  const prefetcher = prefetching(sizes.map((_, i) => i), (i) => instrumented(started, i), 8, { bytes: 25, sizeOf: (i) => sizes[i]! });
  prefetcher.open(0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([...started].sort(), [0, 1, 2, 3], 'small ones until the budget is spent');
  prefetcher.open(4);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([...started].sort(), [0, 1, 2, 3, 4, 5], 'one big one ahead, however big');
  prefetcher.close();
});

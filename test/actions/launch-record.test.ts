import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LaunchRecords } from '../../src/actions/launch-record.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';

// A user's record of an action, over the memory store: bounded to its newest entries, an update never brings back
// what was pruned, and an entry keeps the launch and time that began it.

const launch = (id: string) => ({ id, action: 'upload-files', user: { login: 'artist' } });
const file = (key: string, state: 'queued' | 'sending' | 'done' = 'queued') => ({ key, kind: 'file' as const, state, name: `${key}.mov`, size: 1, targets: [] });

test('the record keeps its newest entries; a pruned entry is not brought back by a late update', async () => {
  const store = new MemoryKeyValueStore();
  const records = new LaunchRecords({ store, ttlSeconds: 60, maxEntries: 3 });
  for (const key of ['a', 'b', 'c', 'd']) {
    await records.note(launch('L1'), file(key));
    await sleep(2); // distinct times, so "oldest" is well defined
  }
  const { thisLaunch } = await records.list(launch('L1'));
  assert.deepEqual(thisLaunch.map((entry) => entry.key), ['d', 'c', 'b']);
  await records.update(launch('L1'), 'a', (entry) => ({ ...entry, state: 'done' }));
  assert.deepEqual((await records.list(launch('L1'))).thisLaunch.map((entry) => entry.key), ['d', 'c', 'b']);
  await store.close();
});

test('an update keeps when and by which launch the entry began; another launch sees it as earlier', async () => {
  const store = new MemoryKeyValueStore();
  const records = new LaunchRecords({ store, ttlSeconds: 60 });
  await records.note(launch('L1'), file('a'));
  const [began] = (await records.list(launch('L1'))).thisLaunch;
  await sleep(2);
  await records.update(launch('L2'), 'a', (entry) => ({ ...entry, state: 'done' }));
  const later = await records.list(launch('L2'));
  assert.deepEqual(later.thisLaunch, []);
  assert.equal(later.earlier[0]?.state, 'done');
  assert.equal(later.earlier[0]?.at, began!.at);
  assert.notEqual(later.earlier[0]?.updatedAt, began!.at);
  await store.close();
});
